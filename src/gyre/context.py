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

__all__ = ["ChildRequest", "PhaseChoice", "RunContext", "check_child_name", "make_request"]


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
        """The final path of an artifact of this run (default ``run_0007.h5``)."""
        return self.artifact_dir / (filename or artifact_filename(self.run))

    @contextmanager
    def artifact(self, filename: str | None = None) -> Iterator[Path]:
        """Write an artifact atomically: yields a temporary path, renamed when the block ends cleanly."""
        with atomic_path(self.artifact_path(filename)) as temporary:
            yield temporary
