"""RunContext: everything a phase's ``run`` gets besides its payload, and the ChildRequest it makes.

A request is only a description. A phase makes it with ``ctx.spawn(...)`` on a worker; it
travels back to the driver inside the task's outcome, and the driver decides (limits,
validity) whether it becomes a child graph. Nothing here talks to the scheduler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from .progress import ProgressReporter
from .runs import artifact_filename
from .workspace.atomic import atomic_path

__all__ = [
    "ChildRequest",
    "PhaseChoice",
    "RunContext",
    "check_child_name",
    "make_request",
    "part_artifact_path",
    "whole_artifact_path",
]


#: the phases of a child: instances, names of the requesting pipeline's phases, or a factory
PhaseChoice = Union["Sequence[Any]", "Callable[[], Sequence[Any]]", None]

_CHILD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class ChildRequest:
    """A request for a child graph: which phases, with which parameters, over which runs, and why.

    Parameters
    ----------
    reason
        A short text saying why the child is wanted (shown in the report's lineage tree).
    phases
        The child's phases: ``None`` for the same phases as the requester's pipeline, a list
        of ``Phase`` instances and/or names of the requester's phases, or a function
        returning phases (called in the driver).
    params
        Parameter overrides per phase name, e.g. ``{"fit": {"tolerance": 1e-6}}``; each is set
        on a copy of the phase, and must name an existing attribute.
    runs
        The runs the child works on; ``None`` for the requesting run (or the finished run an
        adaptive function was called with).
    inputs
        The directory of the child's input files; ``None`` for the requester's run directory.
        Any directory of per-run files works, e.g. a phase's artifact directory.
    run_pattern
        The input file name pattern; ``None`` for the requester's.
    name
        The last part of the child's name (letters, digits, ``_``, ``-``); ``None`` for
        ``<phase>-r<run>-<k>``, which is the same whatever the order of completion.
    """

    reason: str
    phases: PhaseChoice = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    runs: tuple[int, ...] | None = None
    inputs: Path | None = None
    run_pattern: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        params = {str(phase): dict(values) for phase, values in dict(self.params).items()}
        object.__setattr__(self, "params", params)
        if self.runs is not None:
            object.__setattr__(self, "runs", tuple(int(run) for run in self.runs))
        if self.inputs is not None:
            object.__setattr__(self, "inputs", Path(self.inputs))
        if self.phases is not None and not callable(self.phases):
            object.__setattr__(self, "phases", tuple(self.phases))


def make_request(
    reason: str,
    *,
    phases: PhaseChoice = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    runs: Iterable[int] | None = None,
    inputs: str | Path | None = None,
    run_pattern: str | None = None,
    name: str | None = None,
) -> ChildRequest:
    """Build a :class:`ChildRequest`, checking what can be checked where it is made.

    Raises
    ------
    ValueError
        An empty reason, a name that cannot name a directory, or params that are not a
        mapping of phase name to a mapping of parameters.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a child request needs a short reason, e.g. ctx.spawn('chi2/ndf 3.1 > 2')")
    if name is not None:
        problem = check_child_name(name)
        if problem:
            raise ValueError(problem)
    params = dict(params or {})
    for phase, values in params.items():
        if not isinstance(values, Mapping):
            raise ValueError(
                f"params must map a phase name to its parameters, e.g. {{'fit': {{'tolerance': 1e-6}}}}; "
                f"got {values!r} for {phase!r}"
            )
    return ChildRequest(
        reason=reason.strip(),
        phases=phases,
        params=params,
        runs=tuple(runs) if runs is not None else None,
        inputs=Path(inputs) if inputs is not None else None,
        run_pattern=run_pattern,
        name=name,
    )


def check_child_name(name: str) -> str | None:
    """Why ``name`` cannot be the last part of a child's name, or ``None`` if it can."""
    if not isinstance(name, str) or not _CHILD_NAME.match(name):
        return (
            f"child name {name!r} cannot be used: use letters, digits, '_' and '-' "
            "(no '.', which separates the generations of a child's full name)"
        )
    return None


@dataclass
class RunContext:
    """What a phase gets for one run: where to write, its random stream, progress, shared data, a logger.

    ``rng`` depends only on (pipeline seed, lineage, phase, run). Write artifacts with
    ``with ctx.artifact() as path:`` so an interrupted write never looks complete.
    ``spawn(...)`` requests an adaptive child graph; ``lineage`` names the child this run
    belongs to (empty for the top-level pipeline).
    """

    workspace: Path
    run: int
    phase: str
    rng: np.random.Generator
    progress: ProgressReporter
    shared: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("gyre.phase"))
    lineage: tuple[str, ...] = ()
    children: list[ChildRequest] = field(default_factory=list)
    #: the events this task owns, for a phase that declares a ``Split`` (``None`` otherwise):
    #: the whole run, or one part of it
    events: range | None = None
    #: ``(index, count)`` of this part, 1-based, when the run is split; ``None`` for the whole run
    part: tuple[int, int] | None = None
    #: block size and the generator of a block (index → generator), for ``event_blocks``
    events_per_block: int = 0
    block_rng: Callable[[int], np.random.Generator] | None = field(default=None, repr=False)

    def event_blocks(self) -> Iterator[tuple[range, np.random.Generator]]:
        """Each fixed event block of ``ctx.events`` with its own random generator.

        A block's generator depends on (seed, lineage, phase, run, block) only, so a phase
        that draws from it, event by event in order, gets the same numbers whether the run
        is split or not and whatever the part boundaries. Only for split phases.
        """
        if self.events is None or self.block_rng is None or self.events_per_block < 1:
            raise RuntimeError(
                f"phase {self.phase!r} asked for event blocks, but it declares no split: "
                "set `split = gyre.Split(dataset=..., events_per_block=...)` on the phase"
            )
        size = self.events_per_block
        for index in range(self.events.start // size, -(-self.events.stop // size)):
            block = range(max(index * size, self.events.start), min((index + 1) * size, self.events.stop))
            if len(block):
                yield block, self.block_rng(index)

    @property
    def part_label(self) -> str:
        """``run 7`` or ``run 7 part 3/8, events 3000-3999``: where this task stands, for messages."""
        return describe_part(self.run, self.part, self.events)

    @property
    def generation(self) -> int:
        """0 for the top-level pipeline, 1 for its children, 2 for theirs, ..."""
        return len(self.lineage)

    def spawn(
        self,
        reason: str,
        *,
        phases: PhaseChoice = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        runs: Iterable[int] | None = None,
        inputs: str | Path | None = None,
        run_pattern: str | None = None,
        name: str | None = None,
    ) -> ChildRequest:
        """Request a child graph (see :class:`gyre.ChildRequest` for the keywords); returns the request.

        Nothing starts here: the request goes back to the driver with this run's outcome,
        and the driver runs it (or refuses it, beyond the limits) while other runs go on.
        """
        child = make_request(
            reason, phases=phases, params=params, runs=runs, inputs=inputs, run_pattern=run_pattern, name=name
        )
        self.children.append(child)
        return child

    @property
    def artifact_dir(self) -> Path:
        """``<workspace>/<phase>``."""
        return self.workspace / self.phase

    @property
    def asset_dir(self) -> Path:
        """``<workspace>/<phase>_assets``."""
        return self.workspace / f"{self.phase}_assets"

    def artifact_path(self, filename: str | None = None) -> Path:
        """The final path of an artifact of this run (default ``run_0007.h5``).

        In a part of a split run, the part's own file under ``<phase>/parts/`` (see
        :func:`part_artifact_path`); gyre merges the parts into the run's path.
        """
        path = self.artifact_dir / (filename or artifact_filename(self.run))
        if self.part is not None and self.events is not None:
            return part_artifact_path(path, self.events)
        return path

    @contextmanager
    def artifact(self, filename: str | None = None) -> Iterator[Path]:
        """Write an artifact atomically: yields a temporary path, renamed when the block ends cleanly."""
        with atomic_path(self.artifact_path(filename)) as temporary:
            yield temporary


def describe_part(run: int, part: tuple[int, int] | None, events: range | None) -> str:
    """``run 7``, or ``run 7 part 3/8, events 3000-3999`` for a part."""
    if part is None or events is None:
        return f"run {run}"
    return f"run {run} part {part[0]}/{part[1]}, events {events.start}-{events.stop - 1}"


def part_artifact_path(path: Path, events: range) -> Path:
    """Where the part holding ``events`` writes the artifact whose run path is ``path``.

    ``<phase>/run_0007.h5`` → ``<phase>/parts/run_0007.h5/events_000003000-000003999.h5``.
    """
    path = Path(path)
    return path.parent / "parts" / path.name / f"events_{events.start:09d}-{events.stop - 1:09d}{path.suffix}"


def whole_artifact_path(part_path: Path) -> Path:
    """The run's artifact path that a part artifact (:func:`part_artifact_path`) is merged into."""
    part_path = Path(part_path)
    if part_path.parent.parent.name != "parts":
        raise ValueError(f"{part_path} is not a part artifact (<phase>/parts/<file>/events_<first>-<last>)")
    return part_path.parent.parent.parent / part_path.parent.name
