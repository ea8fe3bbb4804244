"""RunContext: everything a phase's ``run`` gets besides its payload."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .phase import artifact_filename
from .progress import ProgressReporter

__all__ = ["RunContext", "atomic_path"]


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    An interrupted or failing write leaves no file at ``final`` (and removes its temporary),
    so a file under its final name is always complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written to {temporary} for {final}")
        os.replace(temporary, final)
    finally:
        if temporary.exists():
            temporary.unlink()


@dataclass
class RunContext:
    """What a phase gets for one run: where to write, its random stream, progress, shared data, a logger.

    ``rng`` depends only on (pipeline seed, phase, run). Write artifacts with
    ``with ctx.artifact() as path:`` so an interrupted write never looks complete.
    """

    workspace: Path
    run: int
    phase: str
    rng: np.random.Generator
    progress: ProgressReporter
    shared: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("gyre.phase"))

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
