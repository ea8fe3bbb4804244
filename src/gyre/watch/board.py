"""RunBoard: the live run × phase state of one pipeline, as the gyre page and the HTML summary draw it."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..progress import progress_cell
from ..result import Status, TaskOutcome

__all__ = ["BAR_FIELDS", "BOARD_FORMAT", "BOARD_STATES", "FINAL_STATES", "STATE_COLOURS", "RunBoard"]

BOARD_FORMAT = "gyre-board/2"

#: what each entry of a board's ``bars`` holds (one per (phase, run) that ran on a worker)
BAR_FIELDS = ("worker", "phase", "run", "started", "finished", "status", "child")

#: every state a cell of the board can be in, with its one-letter code in ``grid`` strings
#: (the two live states, every :class:`~gyre.result.Status` coded by its first letter, and
#: ``excluded``: a run of the range left out on request, ``--skip``/``runs_to_skip``)
BOARD_STATES = {
    "waiting": "w",
    "running": "r",
    **{status.value: status.value[0] for status in Status},
    "excluded": "x",
}
_STATE_OF_CODE = {code: state for state, code in BOARD_STATES.items()}

#: the colour of each state, the same on the live page and in the static summary
STATE_COLOURS = {
    "waiting": "#d9dde3",
    "running": "#3b82f6",
    "done": "#22a35a",
    "cached": "#7cc8b4",
    "failed": "#d7263d",
    "skipped": "#f0a500",
    "missing": "#6b7280",
    "excluded": "#ffffff",
}

#: states a (phase, run) ends in (it will not change any more)
FINAL_STATES = frozenset(BOARD_STATES) - {"waiting", "running"}

_MAX_ERROR = 600
_MAX_TRACEBACK = 6000


class RunBoard:
    """Which state each (phase, run) is in, per-phase counts and timings, failures and in-run progress.

    A :class:`~gyre.job.submit.Listener` (``task_done``) that also takes ``ctx.progress`` messages
    (``run_progress``). Updates cost O(1); ``snapshot()`` gives plain JSON-able data (the grid
    as one string per phase, one letter per run) and ``version`` grows with every change, so a
    publisher sends only when something changed. Thread-safe.

    Outcomes that carry a ``lineage`` belong to adaptive children: they are counted per
    lineage (with their generation) instead of in the grid.

    Two lists only grow: ``bars`` (where and when each (phase, run) ran, :data:`BAR_FIELDS`,
    the timeline's data) and ``failures`` (with their tracebacks, the first ``max_failures``).
    ``snapshot(bars_from=n, failures_from=m)`` carries only their entries from ``n`` and ``m``
    on, so the board pushed every half second stays small however long the job.
    """

    def __init__(
        self,
        *,
        pipeline: str,
        key: str,
        phases: Sequence[str],
        runs: Iterable[int],
        missing: Iterable[int] = (),
        skipped: Iterable[int] = (),
        max_failures: int = 200,
    ) -> None:
        self.pipeline = pipeline
        self.key = key
        self.phases = list(phases)
        missing_runs = set(missing)
        excluded = set(skipped) - missing_runs - set(runs)
        self.runs = sorted(set(runs) | missing_runs | excluded)
        self.max_failures = max_failures
        self.started = time.time()
        self.finished: float | None = None
        self.version = 0
        self._column = {run: index for index, run in enumerate(self.runs)}
        self._grid = {phase: bytearray(b"w" * len(self.runs)) for phase in self.phases}
        for run in missing_runs:
            for phase in self.phases:
                self._grid[phase][self._column[run]] = ord("m")
        for run in excluded:
            for phase in self.phases:
                self._grid[phase][self._column[run]] = ord("x")
        waiting = len(self.runs) - len(missing_runs) - len(excluded)
        self._counts = {phase: Counter({"waiting": waiting}) for phase in self.phases}
        for phase in self.phases:
            self._counts[phase]["missing"] = len(missing_runs)
            self._counts[phase]["excluded"] = len(excluded)
        self._durations: dict[str, list[float]] = {phase: [] for phase in self.phases}
        self._failures: list[dict[str, Any]] = []
        self._n_failures = 0
        self._bars: list[list[Any]] = []
        self._running: dict[tuple[str, int], dict[str, Any]] = {}
        self._finished_cells: set[tuple[str, int]] = set()
        self._children: dict[tuple[str, ...], Counter[str]] = {}
        #: (phase, run) of a split run → [parts finished, parts in all]
        self._parts: dict[tuple[str, int], list[int]] = {}
        self._lock = threading.Lock()

    # -- listening -----------------------------------------------------------------------
    def task_done(self, outcome: TaskOutcome) -> None:
        """Record the end state of one (phase, run)."""
        with self._lock:
            self.version += 1
            if outcome.lineage:
                self._children.setdefault(tuple(outcome.lineage), Counter())[outcome.status] += 1
            else:
                known = outcome.status in BOARD_STATES and outcome.status not in ("waiting", "running")
                self._set(
                    outcome.phase, outcome.run, outcome.status if known else ("done" if outcome.ok else "skipped")
                )
                self._finished_cells.add((outcome.phase, outcome.run))
                self._running.pop((outcome.phase, outcome.run), None)
                work = outcome.work  # a split run's: its parts' and its merge's
                if work is not None and outcome.phase in self._durations:
                    self._durations[outcome.phase].append(work)
            if outcome.started is not None and outcome.finished is not None:
                self._bars.append(
                    [
                        outcome.worker or "",
                        outcome.phase,
                        outcome.run,
                        round(outcome.started, 3),
                        round(outcome.finished, 3),
                        str(outcome.status),
                        bool(outcome.lineage),
                    ]
                )
            if outcome.status == Status.FAILED:
                self._n_failures += 1
                if len(self._failures) < self.max_failures:
                    self._failures.append(
                        {
                            "phase": outcome.phase,
                            "run": outcome.run,
                            "error": (outcome.error or "")[:_MAX_ERROR],
                            "error_type": outcome.error_type,
                            "lineage": list(outcome.lineage),
                            "worker": outcome.worker,
                            "traceback": (outcome.traceback or "")[-_MAX_TRACEBACK:],
                        }
                    )

    def part_done(self, outcome: TaskOutcome) -> None:
        """Count one finished part of a split run (its (phase, run) shows ``k/n parts``)."""
        if outcome.lineage or outcome.part is None:
            return
        with self._lock:
            self.version += 1
            counted = self._parts.setdefault((outcome.phase, outcome.run), [0, outcome.part[1]])
            counted[0] += 1

    def run_progress(self, message: dict[str, Any]) -> None:
        """Record in-run progress (or the start) of a (phase, run); late messages of finished cells are ignored."""
        cell = progress_cell(message)
        if cell is None:
            return
        with self._lock:
            if cell in self._finished_cells or cell[0] not in self._grid or cell[1] not in self._column:
                return
            self.version += 1
            known = self._running.get(cell, {})
            self._running[cell] = {
                "phase": cell[0],
                "run": cell[1],
                "completed": message.get("completed"),
                "total": message.get("total"),
                "worker": message.get("worker") or known.get("worker"),
                "started": known.get("started") or round(float(message.get("at") or time.time()), 3),
            }
            self._set(cell[0], cell[1], "running")

    def finish(self) -> None:
        """Mark the pipeline as ended (nothing is running any more)."""
        with self._lock:
            self.version += 1
            self.finished = time.time()
            for phase, run in list(self._running):
                if self.state(phase, run) == "running":
                    self._set(phase, run, "waiting")
            self._running.clear()

    # -- reading -------------------------------------------------------------------------
    def state(self, phase: str, run: int) -> str:
        """The state of one (phase, run)."""
        return _STATE_OF_CODE[chr(self._grid[phase][self._column[run]])]

    def snapshot(self, *, max_running: int = 100, bars_from: int = 0, failures_from: int = 0) -> dict[str, Any]:
        """The board as JSON-able data (what the gyre page polls and the HTML summary draws).

        ``bars`` and ``failures`` hold the entries from ``bars_from`` and ``failures_from`` on
        (everything by default); ``n_bars`` and ``n_failures_kept`` say how many there are in all.
        """
        with self._lock:
            running = sorted(self._running.values(), key=lambda m: (m["phase"], m["run"]))
            running = [self._with_parts(entry) for entry in running]
            return {
                "format": BOARD_FORMAT,
                "id": self.key,
                "pipeline": self.pipeline,
                "started": self.started,
                "finished": self.finished,
                "updated": time.time(),
                "version": self.version,
                "phases": list(self.phases),
                "runs": list(self.runs),
                "grid": {phase: self._grid[phase].decode() for phase in self.phases},
                "counts": {phase: {s: self._counts[phase][s] for s in BOARD_STATES} for phase in self.phases},
                "timings": {phase: _timings(self._durations[phase]) for phase in self.phases},
                "failures": self._failures[failures_from:],
                "failures_from": failures_from,
                "n_failures_kept": len(self._failures),
                "n_failures": self._n_failures,
                "bars": self._bars[bars_from:],
                "bars_from": bars_from,
                "n_bars": len(self._bars),
                "running": running[:max_running],
                "n_running": len(running),
                "children": [
                    {"lineage": list(lineage), "generation": len(lineage), "counts": dict(counts)}
                    for lineage, counts in sorted(self._children.items())
                ],
            }

    def _with_parts(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A running (phase, run) with ``parts: "3/8 parts"`` when it is a split run's."""
        counted = self._parts.get((entry["phase"], entry["run"]))
        return {**entry, "parts": f"{counted[0]}/{counted[1]} parts"} if counted else entry

    def _set(self, phase: str, run: int, state: str) -> None:
        column = self._column.get(run)
        if column is None or phase not in self._grid:
            return
        previous = _STATE_OF_CODE[chr(self._grid[phase][column])]
        if previous == state:
            return
        self._grid[phase][column] = ord(BOARD_STATES[state])
        self._counts[phase][previous] -= 1
        self._counts[phase][state] += 1


def _timings(durations: list[float]) -> dict[str, float | int | None]:
    if not durations:
        return {"n": 0, "total": 0.0, "mean": None, "median": None, "max": None}
    return {
        "n": len(durations),
        "total": sum(durations),
        "mean": sum(durations) / len(durations),
        "median": statistics.median(durations),
        "max": max(durations),
    }
