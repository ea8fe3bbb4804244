"""RunContext: everything a phase's ``run`` gets besides its payload."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .adaptive.request import ChildRequest, PhaseChoice, make_request
from .phase import artifact_filename
from .progress import ProgressReporter
from .workspace.atomic import atomic_path

__all__ = ["RunContext"]


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
