"""Progress from inside a run: cheap, throttled updates a phase reports through ``ctx.progress``."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = ["LOCAL_PROGRESS", "PROGRESS_TOPIC", "ProgressReporter", "progress_cell", "progress_topic"]

PROGRESS_TOPIC = "gyre-progress"

#: where progress messages go when a phase runs in the driver's own thread (the sync model):
#: set by the watch around the job, read by the task; ``None`` elsewhere
LOCAL_PROGRESS: ContextVar[Callable[[dict[str, Any]], None] | None] = ContextVar("gyre_local_progress", default=None)


def progress_topic(token: str) -> str:
    """The dask event topic of one job's progress messages: jobs sharing a client do not hear each other's."""
    return f"{PROGRESS_TOPIC}-{token}"


class ProgressReporter:
    """Counts a run's progress (``update``) and emits at most one message per ``interval`` seconds.

    The phase calls ``ctx.progress.set_total(n)`` and ``ctx.progress.update(k)`` as often as it
    likes; only throttled snapshots leave the process. ``update`` does not even read the clock
    on every call: it looks at it again only after a number of updates estimated from the rate
    so far (about ten looks per interval), so reporting per event costs tens of nanoseconds.

    Messages are small dicts: ``{"phase", "run", "completed", "total"}``; the first one is sent
    when the phase starts computing (``start``), the last one when it ends (``finish``).
    """

    __slots__ = (
        "_check_at",
        "_emit",
        "_interval",
        "_last_check",
        "_last_count",
        "_next",
        "_stride",
        "completed",
        "phase",
        "run",
        "total",
    )

    def __init__(
        self,
        phase: str,
        run: int,
        emit: Callable[[dict[str, Any]], None] | None = None,
        *,
        interval: float = 0.5,
    ) -> None:
        self.phase = phase
        self.run = run
        self.total: int | None = None
        self.completed = 0
        self._emit = emit
        self._interval = interval
        self._next = 0.0
        # without a destination nothing is ever checked: update() stays a counter
        self._check_at: float = 1 if emit is not None else float("inf")
        self._stride = 1
        self._last_check = time.monotonic()
        self._last_count = 0

    def start(self) -> None:
        """Announce that the run's phase is computing (called by gyre before ``Phase.run``)."""
        self._maybe_emit(force=True)

    def set_total(self, total: int) -> None:
        """Declare how many units (events, chunks) this run has."""
        self.total = int(total)
        self._maybe_emit(force=True)

    def update(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.completed += n
        if self.completed >= self._check_at:
            self._check()

    def finish(self) -> None:
        """Emit the final count (called by gyre when the run's phase ends)."""
        self._maybe_emit(force=True)

    def snapshot(self) -> dict[str, Any]:
        """The current state as a small message."""
        return {"phase": self.phase, "run": self.run, "completed": self.completed, "total": self.total}

    def _check(self) -> None:
        """Look at the clock; emit if due; plan the next look from the rate since the last one."""
        now = time.monotonic()
        elapsed = now - self._last_check
        done = self.completed - self._last_count
        self._last_check, self._last_count = now, self.completed
        if now >= self._next:
            self._next = now + self._interval
            if self._emit is not None:
                self._emit(self.snapshot())
        per_second = done / elapsed if elapsed > 0 else 0.0
        self._stride = min(2 * self._stride, max(1, int(per_second * self._interval / 10)))
        self._check_at = self.completed + self._stride

    def _maybe_emit(self, *, force: bool) -> None:
        if self._emit is None:
            return
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + self._interval
            self._emit(self.snapshot())


def progress_cell(message: Any) -> tuple[str, int] | None:
    """The (phase, run) a progress message is about; ``None`` for a message that names none."""
    try:
        return str(message["phase"]), int(message["run"])
    except (KeyError, TypeError, ValueError):
        return None
