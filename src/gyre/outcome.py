"""TaskOutcome: what became of one (phase, run), as the driver and the report see it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any

from .result import PhaseResult

__all__ = ["STATUSES", "TaskOutcome"]

#: every status a (phase, run) can end in
STATUSES = ("done", "cached", "failed", "skipped", "missing")


@dataclass(frozen=True)
class TaskOutcome:
    """The end state of one (phase, run): status, result or error, timings and where it ran."""

    phase: str
    run: int
    status: str
    result: PhaseResult | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    lineage: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the next phase of the run can use this result."""
        return self.status in ("done", "cached")

    @property
    def duration(self) -> float | None:
        """Seconds spent in the task, if it ran."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def __setstate__(self, state: dict[str, Any]) -> None:
        # received from a worker: one copy of each phase name, status and worker address for
        # all the outcomes a driver keeps (tens of thousands on a large job), not one each
        for name in ("phase", "status", "worker"):
            if isinstance(state.get(name), str):
                state[name] = sys.intern(state[name])
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def with_status(self, status: str, error: str | None = None) -> TaskOutcome:
        """A copy with another status (and error)."""
        return replace(self, status=status, error=error)
