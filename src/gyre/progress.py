"""Progress from inside a run: cheap, throttled updates a phase reports through ``ctx.progress``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["PROGRESS_TOPIC", "ProgressReporter"]

PROGRESS_TOPIC = "gyre-progress"


class ProgressReporter:
    """Counts a run's progress (``update``) and emits at most one message per ``interval`` seconds.

    The phase calls ``ctx.progress.set_total(n)`` and ``ctx.progress.update(k)`` as often as it
    likes; only throttled snapshots leave the process, so reporting per event costs nanoseconds.
    """

    __slots__ = ("_emit", "_interval", "_next", "completed", "phase", "run", "total")

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

    def set_total(self, total: int) -> None:
        """Declare how many units (events, chunks) this run has."""
        self.total = int(total)
        self._maybe_emit(force=True)

    def update(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.completed += n
        if self._emit is not None and time.monotonic() >= self._next:
            self._maybe_emit(force=False)

    def finish(self) -> None:
        """Emit the final count (called by gyre when the run's phase ends)."""
        self._maybe_emit(force=True)

    def snapshot(self) -> dict[str, Any]:
        """The current state as a small message."""
        return {"phase": self.phase, "run": self.run, "completed": self.completed, "total": self.total}

    def _maybe_emit(self, *, force: bool) -> None:
        if self._emit is None:
            return
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + self._interval
            self._emit(self.snapshot())
