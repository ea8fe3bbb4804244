"""What a (phase, run) gives: the phase's own PhaseResult, and gyre's TaskOutcome around it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["STATUSES", "FailureGroup", "PhaseResult", "Status", "TaskOutcome", "group_failures", "parts_seconds"]


@dataclass(frozen=True, init=False)
class PhaseResult:
    """The artifacts one phase produced for one run, and whether they are usable.

    Parameters
    ----------
    artifacts
        Name → path of each file the phase wrote (or, for the first phase, the run file
        under the name ``"run"``).
    run
        The run number (``run_number=`` is accepted too, as Spyral spells it).
    successful
        ``False`` marks a result the phase itself judged invalid: the run fails there
        and its later phases are skipped.
    metadata
        Small JSON-able facts about the result (counts, fit quality); shown in the report.

    Raises
    ------
    TypeError
        No run number, two different ones, or a bool where the run number goes (Spyral's
        positional order ``(artifacts, successful, run_number)`` is not gyre's).
    """

    artifacts: Mapping[str, Path]
    run: int
    successful: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        artifacts: Mapping[str, Path | str],
        run: int | None = None,
        successful: bool = True,
        metadata: Mapping[str, Any] | None = None,
        *,
        run_number: int | None = None,
    ) -> None:
        if isinstance(run, bool):
            raise TypeError(
                f"PhaseResult's second argument is the run number, got {run!r}: gyre's order is "
                "(artifacts, run, successful, metadata); name them, e.g. PhaseResult(paths, run=7, successful=True)"
            )
        if run is not None and run_number is not None and run != run_number:
            raise TypeError(f"PhaseResult got run={run} and run_number={run_number}: give one run number")
        number = run if run is not None else run_number
        if number is None:
            raise TypeError("PhaseResult needs the run number: PhaseResult(artifacts, run=7) (or run_number=7)")
        paths = {str(k): Path(v) for k, v in dict(artifacts).items()}
        object.__setattr__(self, "artifacts", MappingProxyType(paths))
        object.__setattr__(self, "run", number)
        object.__setattr__(self, "successful", successful)
        object.__setattr__(self, "metadata", MappingProxyType(dict(metadata or {})))

    @property
    def run_number(self) -> int:
        """The run number, under Spyral's name."""
        return self.run

    @property
    def path(self) -> Path:
        """The one artifact's path; an error if there is not exactly one."""
        if len(self.artifacts) != 1:
            names = ", ".join(self.artifacts) or "none"
            raise ValueError(f"run {self.run} has {len(self.artifacts)} artifacts ({names}); index .artifacts by name")
        return next(iter(self.artifacts.values()))

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (dict(self.artifacts), self.run, self.successful, dict(self.metadata)),
        )


def _rebuild(artifacts: dict[str, Path], run: int, successful: bool, metadata: dict[str, Any]) -> PhaseResult:
    return PhaseResult(artifacts=artifacts, run=run, successful=successful, metadata=metadata)


class Status(str, Enum):
    """How a (phase, run) ended: the one vocabulary of outcomes, the report, the dataset and the pages.

    The members are strings (``Status.DONE == "done"``), so they read and compare as the
    plain words they are in report.json.
    """

    #: computed by this job
    DONE = "done"
    #: reused from an earlier job (or an inactive phase's artifact)
    CACHED = "cached"
    #: the phase raised, or its result was invalid
    FAILED = "failed"
    #: not run: an earlier phase of the run failed, the job was cancelled or interrupted
    SKIPPED = "skipped"
    #: the run has no file
    MISSING = "missing"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


#: every status a (phase, run) can end in, in the order the report and the dataset count them
STATUSES: tuple[Status, ...] = tuple(Status.__members__.values())


@dataclass(frozen=True)
class TaskOutcome:
    """The end state of one (phase, run): status, result or error, timings and where it ran."""

    phase: str
    run: int
    status: Status
    result: PhaseResult | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    lineage: tuple[str, ...] = ()
    #: the host name of the process that ran it (the manifest records it); ``None`` if not run
    host: str | None = None
    #: what the worker found of each artifact it wrote (``artifact_facts``: path, size, mtime,
    #: checksum), for the manifest record; empty unless computed
    artifacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the adaptive child requests (``ChildRequest``) the phase made with ``ctx.spawn``
    children: tuple[Any, ...] = ()
    #: why the outcome is what it is when gyre decided it (cached: which record; skipped: why)
    reason: str | None = None
    #: for one part of a split run: ``(index, count)``, 1-based, and its events
    part: tuple[int, int] | None = None
    events: range | None = None
    #: for a split run's merged (phase, run): one summary per part (index, count, first and
    #: last event, status, seconds, worker), in event order
    parts: tuple[Mapping[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the next phase of the run can use this result."""
        return self.status in (Status.DONE, Status.CACHED)

    @property
    def duration(self) -> float | None:
        """Seconds spent in the task, if it ran."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @property
    def work(self) -> float | None:
        """Seconds of work of the (phase, run), if it ran: its task's, plus its parts' for a split run
        (whose own task is only the merge)."""
        duration = self.duration
        return None if duration is None else duration + parts_seconds(self.parts)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # received from a worker: one copy of each phase name, status and worker address for
        # all the outcomes a driver keeps (tens of thousands on a large job), not one each
        for name in ("phase", "worker", "host"):
            if isinstance(state.get(name), str):
                state[name] = sys.intern(state[name])
        for name, value in state.items():
            object.__setattr__(self, name, value)


#: what differs between near-identical failure messages of different runs: numbers, paths, quoted values
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|(?:/[^\s:,()]+)+|0x[0-9a-f]+|\d+(?:\.\d+)?")


def parts_seconds(parts: Iterable[Mapping[str, Any]]) -> float:
    """The seconds a split (phase, run)'s parts took (their summaries' ``seconds``), in all."""
    return sum(float(part.get("seconds") or 0.0) for part in parts)


@dataclass(frozen=True)
class FailureGroup:
    """Failures of one phase that differ only in run numbers, paths and values: one line in a display.

    ``message`` is the first run's message as it was; ``runs`` every run in the group, sorted;
    ``tracebacks`` each run's traceback (run → text) where the worker sent one.
    """

    phase: str
    error_type: str | None
    message: str
    runs: tuple[int, ...]
    tracebacks: Mapping[int, str] = field(default_factory=dict)


def group_failures(outcomes: Iterable[TaskOutcome]) -> list[FailureGroup]:
    """The ``failed`` outcomes grouped by phase, error type and message shape, largest group first.

    Two messages share a shape when they are equal once their numbers, paths and quoted values
    are blanked (``… raised on run 4: … (file /d/run_0004.h5)`` and the same for run 9), so
    twelve runs failing for one reason make one group, not twelve lines. The phase name is
    kept whole (it is quoted in every message).
    """
    groups: dict[tuple[str, str | None, str], list[TaskOutcome]] = {}
    for outcome in outcomes:
        if outcome.status is not Status.FAILED:
            continue
        message = outcome.error or ""
        shape = _VARYING.sub("#", message.replace(repr(outcome.phase), "<phase>"))
        groups.setdefault((outcome.phase, outcome.error_type, shape), []).append(outcome)
    found = [
        FailureGroup(
            phase=members[0].phase,
            error_type=members[0].error_type,
            message=min(members, key=lambda o: o.run).error or "",
            runs=tuple(sorted({o.run for o in members})),
            tracebacks={o.run: o.traceback for o in members if o.traceback},
        )
        for members in groups.values()
    ]
    return sorted(found, key=lambda g: (-len(g.runs), g.phase, g.runs[0]))
