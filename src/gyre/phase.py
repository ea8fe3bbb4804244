"""Phase: the unit of analysis a user writes once and gyre runs over every run."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .result import PhaseResult
from .runs import artifact_filename
from .schema import Schema

if TYPE_CHECKING:
    from .context import RunContext

__all__ = ["Phase"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class Phase(ABC):
    """One step of an analysis, applied to every run (subclass it).

    A phase has a ``name`` (a class attribute or the constructor's argument) that names
    its two workspace directories: ``<workspace>/<name>/`` for per-run artifacts and
    ``<workspace>/<name>_assets/`` for what it builds once. Implement :meth:`run`; override
    :meth:`create_assets`, :meth:`shared_data` and :meth:`construct_artifact` when needed,
    and set ``incoming_schema`` / ``outgoing_schema`` so the chain is checked before any
    compute. :meth:`config` names the parameters that define the phase's output.
    """

    name: str = ""
    incoming_schema: ClassVar[Schema | None] = None
    outgoing_schema: ClassVar[Schema | None] = None
    version: ClassVar[str] = "1"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name

    @abstractmethod
    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        """Process one run: read ``payload``'s artifacts, write this phase's, return them."""

    def create_assets(self, workspace: Path) -> bool:
        """Build what every run needs (tables, meshes) into :meth:`asset_dir`; ``False`` = failed."""
        return True

    def shared_data(self, workspace: Path) -> Any:
        """Large read-only data loaded once per worker process and handed to every run as ``ctx.shared``."""
        return None

    def construct_artifact(self, payload: PhaseResult, workspace: Path) -> PhaseResult:
        """Point at this phase's cached artifact for ``payload.run`` (used when the phase is inactive)."""
        return PhaseResult(
            artifacts={self.name: self.artifact_path(workspace, payload.run)},
            run=payload.run,
        )

    def config(self) -> Mapping[str, Any]:
        """The parameters that define this phase's output (by default its public attributes)."""
        return {key: value for key, value in sorted(vars(self).items()) if not key.startswith("_") and key != "name"}

    def artifact_dir(self, workspace: Path) -> Path:
        """``<workspace>/<name>``: where this phase's per-run artifacts live."""
        return Path(workspace) / self.name

    def asset_dir(self, workspace: Path) -> Path:
        """``<workspace>/<name>_assets``: where this phase's assets live."""
        return Path(workspace) / f"{self.name}_assets"

    def artifact_path(self, workspace: Path, run: int) -> Path:
        """The default artifact file of ``run``: ``<workspace>/<name>/run_0007.h5``."""
        return self.artifact_dir(workspace) / artifact_filename(run)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def check_phase_name(phase: Phase) -> str | None:
    """Why ``phase.name`` cannot name a directory and a task, or ``None`` if it can."""
    name = getattr(phase, "name", "")
    if not isinstance(name, str) or not name:
        return f"{type(phase).__name__} has no name: set the class attribute `name` or pass name=..."
    if not _NAME.match(name) or name.endswith("_assets") or name == "log":
        return (
            f"phase name {name!r} cannot name a workspace directory: use letters, digits, "
            "'_', '-', '.', not ending in '_assets' and not 'log'"
        )
    return None
