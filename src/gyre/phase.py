"""Phase: the unit of analysis a user writes once and gyre runs over every run."""

from __future__ import annotations

import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .result import PhaseResult
from .runs import artifact_filename
from .schema import Schema

if TYPE_CHECKING:
    from .context import RunContext

__all__ = ["Phase", "Split"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Split:
    """A phase's declaration that its events are independent, so gyre may split a run by event range.

    Set it as a class attribute: ``split = Split(dataset="traces", events_per_block=500)``.

    Parameters
    ----------
    dataset
        The dataset of the *run file* whose first axis counts the run's events (read from
        its shape only). Every split phase of a run sees the same event numbers.
    events_per_block
        The fixed block of events: a part is always whole consecutive blocks (the last
        may be short), and ``ctx.event_blocks()`` gives one random generator per block, so
        the draws, and the merged artifact, are the same however the run is split. Part of
        the phase's configuration: changing it recomputes the phase.

    A split phase reads only ``ctx.events`` of its input (``gyre.iter_chunks(path,
    events=ctx.events)`` does it, also in the part artifact of a split upstream phase),
    writes through ``ctx.artifact_path()`` / ``ctx.artifact()`` (a part's go under
    ``<phase>/parts/``), and may define ``merge(parts, ctx)`` to join its parts' results;
    without it gyre concatenates the parts' ``gyre.write_artifact`` files along ``event``
    (and ``point``).
    """

    dataset: str
    events_per_block: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"Split needs the run file's dataset counting events, e.g. 'traces'; got {self.dataset!r}")
        if isinstance(self.events_per_block, bool) or not isinstance(self.events_per_block, int):
            raise ValueError(f"Split.events_per_block must be a positive integer, got {self.events_per_block!r}")
        if self.events_per_block < 1:
            raise ValueError(f"Split.events_per_block must be a positive integer, got {self.events_per_block!r}")

    def n_blocks(self, n_events: int) -> int:
        """How many blocks ``n_events`` events make (the last may be short)."""
        return -(-max(n_events, 0) // self.events_per_block)

    def block(self, index: int, n_events: int) -> range:
        """The events of block ``index``."""
        start = index * self.events_per_block
        return range(start, min(start + self.events_per_block, n_events))

    def parts(self, n_events: int, n_parts: int) -> tuple[range, ...]:
        """The event ranges of ``n_parts`` parts of similar size, on block boundaries.

        The same for the same ``n_events``, block size and ``n_parts``: part ``i`` holds
        blocks ``i·B//n`` to ``(i+1)·B//n`` of the ``B`` blocks (``n_parts`` is capped at ``B``).
        """
        blocks = self.n_blocks(n_events)
        count = max(1, min(n_parts, blocks))
        edges = [min(n_events, (i * blocks // count) * self.events_per_block) for i in range(count + 1)]
        edges[-1] = n_events
        return tuple(range(a, b) for a, b in itertools.pairwise(edges))


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
    #: set to a :class:`Split` when the phase's events are independent: gyre may then run a
    #: big run's events in parts (``ctx.events``) and merge them (``merge(parts, ctx)``)
    split: ClassVar[Split | None] = None

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
