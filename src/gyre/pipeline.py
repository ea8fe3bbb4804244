"""Pipeline: phases, which of them are active, a workspace and a directory of run files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from .errors import AssetError, ConfigError, SchemaMismatchError
from .phase import Phase, check_phase_name
from .workspace.layout import create_workspace

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)


class Pipeline:
    """An analysis: phases in order, a switch per phase, a workspace and a run directory.

    An active phase computes; an inactive one reuses its cached artifacts (through
    ``Phase.construct_artifact``). Run files are found in ``trace_path`` by ``run_pattern``.
    ``seed`` fixes every random stream; ``None`` uses the workspace's own seed (drawn by its first
    job, kept in ``.gyre/seed.json`` so that resumed jobs continue the same streams) and records it.

    Raises
    ------
    ConfigError
        No phases, ``active`` of the wrong length, or duplicate or unusable phase names.
    """

    def __init__(
        self,
        phases: Sequence[Phase],
        active: Sequence[bool],
        workspace_path: str | Path,
        trace_path: str | Path,
        *,
        seed: int | None = None,
        run_pattern: str = "run_{run:04d}.h5",
        name: str = "pipeline",
    ) -> None:
        phases = list(phases)
        active = [bool(a) for a in active]
        if not phases:
            raise ConfigError("a pipeline needs at least one phase; the phase list is empty")
        for phase in phases:
            if not isinstance(phase, Phase):
                raise ConfigError(f"{phase!r} is not a gyre Phase (subclass gyre.Phase)")
            problem = check_phase_name(phase)
            if problem:
                raise ConfigError(problem)
        if len(active) != len(phases):
            raise ConfigError(
                f"active has {len(active)} switches for {len(phases)} phases: give one True/False per phase"
            )
        names = [p.name for p in phases]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"phase names must be unique; repeated: {', '.join(duplicates)}")
        if "{run" not in run_pattern:
            raise ConfigError(f"run_pattern {run_pattern!r} must contain '{{run}}' (e.g. 'run_{{run:04d}}.h5')")
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.phases = phases
        self.active = active
        self.workspace_path = Path(workspace_path)
        self.trace_path = Path(trace_path)
        self.seed = seed
        self.run_pattern = run_pattern
        self.name = name

    def __repr__(self) -> str:
        chain = " → ".join(f"{p.name}{'' if a else ' (cached)'}" for p, a in zip(self.phases, self.active))
        return f"<Pipeline {self.name!r}: {chain}>"

    @property
    def workspace(self) -> Path:
        """The workspace directory (``workspace_path``, under Spyral's name)."""
        return self.workspace_path

    @workspace.setter
    def workspace(self, path: str | Path) -> None:
        self.workspace_path = Path(path)

    @property
    def traces(self) -> Path:
        """The run-file directory (``trace_path``, under Spyral's name)."""
        return self.trace_path

    @traces.setter
    def traces(self, path: str | Path) -> None:
        self.trace_path = Path(path)

    @property
    def active_phases(self) -> list[Phase]:
        """The phases that compute."""
        return [p for p, a in zip(self.phases, self.active) if a]

    def phase(self, name: str) -> Phase:
        """The phase called ``name``."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise ConfigError(f"no phase named {name!r}; phases: {', '.join(p.name for p in self.phases)}")

    def create_workspace(self) -> None:
        """Create the workspace with each phase's artifact and asset directories."""
        create_workspace(self.workspace_path, self.phases)

    def create_assets(self) -> bool:
        """Build the assets of every active phase, in order; ``True`` once all are built.

        ``if not pipeline.create_assets():`` works as in Spyral, but a failure raises rather
        than returning ``False``.

        Raises
        ------
        AssetError
            A phase's ``create_assets`` returned False or raised; it names the phase.
        """
        for phase in self.active_phases:
            log.info("creating assets of phase %s in %s", phase.name, phase.asset_dir(self.workspace_path))
            try:
                ok = phase.create_assets(self.workspace_path)
            except Exception as exc:
                raise AssetError(
                    f"phase {phase.name!r} failed to create its assets in "
                    f"{phase.asset_dir(self.workspace_path)}: {type(exc).__name__}: {exc}",
                    phase=phase.name,
                ) from exc
            if ok is not True:
                raise AssetError(
                    f"phase {phase.name!r} reported failure creating its assets "
                    f"(create_assets returned {ok!r}); see the log in {self.workspace_path / 'log'}",
                    phase=phase.name,
                )
        return True

    def validate(self) -> None:
        """Check that each phase's outgoing schema gives what the next phase's incoming schema needs.

        Phases without a schema pass. Raises ``SchemaMismatchError`` naming both phases and
        the difference.
        """
        for producer, consumer in zip(self.phases, self.phases[1:]):
            given, needed = producer.outgoing_schema, consumer.incoming_schema
            if given is None or needed is None:
                continue
            problems = given.differences(needed)
            if problems:
                raise SchemaMismatchError(
                    f"phase {consumer.name!r} cannot follow phase {producer.name!r}: " + "; ".join(problems),
                    producer=producer.name,
                    consumer=consumer.name,
                )
