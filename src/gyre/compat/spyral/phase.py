"""SpyralPhase: any Spyral ``PhaseLike`` instance, run unchanged as a gyre phase."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, InvalidResultError, MissingArtifactError, PhaseFailed
from ...phase import Phase
from ...result import PhaseResult
from .bridge import StatusQueue, close_left_open, collect_spyral_warnings, describe_failure
from .results import SpyralSchema, from_spyral_result, to_spyral_result
from .shm import HostSegments, claim_segments, remove_stale_segments

if TYPE_CHECKING:
    from ...context import RunContext

__all__ = ["SpyralPhase"]

log = logging.getLogger(__name__)

_REQUIRED = ("name", "run", "create_assets", "construct_artifact")


class SpyralPhase(Phase):
    """Wrap a Spyral ``PhaseLike`` (built-in or your own subclass) as a gyre phase.

    - ``run(payload, workspace_path, msg_queue, rng)`` is called with gyre's run file or the
      previous phase's artifacts (as Spyral's ``PhaseResult``), the workspace, a queue whose
      ``StatusMessage``s become ``ctx.progress``, and gyre's reproducible ``ctx.rng``.
      ``successful=False`` fails the run with what Spyral logged; an exception fails the run
      with where in Spyral it came from (and the cause, for known Spyral bugs).
    - ``create_assets`` runs at gyre's asset step, in the driver, before the phase is sent
      to the workers (so its side effects on the phase object reach them).
    - ``create_shared_data`` runs once per job on every worker host, before that host's
      first run of the phase; its segments are removed when the job ends (see ``shm``).
    - ``construct_artifact`` serves the phase when it is inactive.
    - Spyral's incoming/outgoing ``ResultSchema``s become :class:`SpyralSchema` and are
      checked by ``Pipeline.validate`` like Spyral's own validation (equality).

    Parameters
    ----------
    phase
        The Spyral phase object, e.g. ``ClusterPhase(cluster_params, det_params)``.
    shm_registry
        Directory of the per-host shared memory registry (default ``/dev/shm``).
    """

    def __init__(self, phase: Any, *, shm_registry: Path | None = None) -> None:
        missing = [attr for attr in _REQUIRED if not hasattr(phase, attr)]
        if missing:
            raise ConfigError(
                f"{phase!r} is not a Spyral PhaseLike (it lacks {', '.join(missing)}); "
                "wrap instances of spyral.PhaseLike subclasses"
            )
        super().__init__(name=str(phase.name))
        self.spyral_phase = phase
        self.shm_registry = shm_registry
        # schemas are per instance here (Spyral sets them in the constructor)
        self.__dict__["incoming_schema"] = SpyralSchema.from_spyral(getattr(phase, "incoming_schema", None))
        self.__dict__["outgoing_schema"] = SpyralSchema.from_spyral(getattr(phase, "outgoing_schema", None))
        self._job = uuid.uuid4().hex[:12]

    @property
    def uses_shared_memory(self) -> bool:
        """Whether the Spyral phase overrides ``create_shared_data`` (PhaseLike's default does nothing)."""
        for klass in type(self.spyral_phase).__mro__:
            if "create_shared_data" in vars(klass):
                return klass.__name__ != "PhaseLike"
        return False

    def create_assets(self, workspace: Path) -> bool:
        """Spyral's ``create_assets``; also removes shared memory a crashed job left on this host."""
        self._job = uuid.uuid4().hex[:12]  # one job per asset step: its shared memory is its own
        if self.uses_shared_memory:
            remove_stale_segments(self.shm_registry)
        return bool(self.spyral_phase.create_assets(Path(workspace)))

    def shared_data(self, workspace: Path) -> HostSegments | None:
        """This worker's claim on the phase's shared memory on this host (created by the host's first worker)."""
        if not self.uses_shared_memory:
            return None
        phase = self.spyral_phase
        return claim_segments(
            f"{self._job}/{self.name}",
            lambda handles: phase.create_shared_data(Path(workspace), handles),
            workspace=Path(workspace),
            directory=self.shm_registry,
        )

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        """Call the Spyral phase's ``run`` for one run and convert what it returns."""
        queue = StatusQueue(ctx.progress)
        touched = [*payload.artifacts.values(), *self.artifact_dir(ctx.workspace).glob(f"*run_{ctx.run:04d}*")]
        with collect_spyral_warnings() as warnings:
            try:
                result = self.spyral_phase.run(to_spyral_result(payload), ctx.workspace, queue, ctx.rng)
            except Exception as exc:
                message = describe_failure(self.spyral_phase, ctx.run, exc)
                close_left_open([*touched, *self.artifact_dir(ctx.workspace).glob(f"*run_{ctx.run:04d}*")])
                raise PhaseFailed(message, phase=self.name, run=ctx.run) from exc
        try:
            converted = from_spyral_result(result)
        except TypeError as exc:
            raise InvalidResultError(f"phase {self.name!r}: {exc}", phase=self.name, run=ctx.run) from exc
        left = close_left_open([*touched, *converted.artifacts.values()])
        if left:
            log.info("closed HDF5 files phase %s left open on run %d: %s", self.name, ctx.run, left)
        if converted.successful:
            return converted
        said = " | ".join(warnings[-3:]) if warnings else "nothing logged at WARNING"
        return PhaseResult(
            artifacts=converted.artifacts,
            run=converted.run,
            successful=False,
            metadata={"spyral": "run() returned PhaseResult(successful=False)", "spyral log": said},
        )

    def construct_artifact(self, payload: PhaseResult, workspace: Path) -> PhaseResult:
        """Spyral's ``construct_artifact``: where the inactive phase's cached artifacts are."""
        result = from_spyral_result(self.spyral_phase.construct_artifact(to_spyral_result(payload), Path(workspace)))
        if not result.successful:
            raise MissingArtifactError(
                f"inactive Spyral phase {self.name!r} could not point at its artifact for run {payload.run} "
                "(construct_artifact returned successful=False)",
                phase=self.name,
                run=payload.run,
            )
        return result

    def config(self) -> Mapping[str, Any]:
        """The Spyral phase's class and its parameter dataclasses: what defines its output."""
        inner = self.spyral_phase
        klass = type(inner)
        params = {
            key: _plain(dataclasses.asdict(value))
            for key, value in sorted(vars(inner).items())
            if dataclasses.is_dataclass(value) and not isinstance(value, type)
        }
        return {"spyral_phase": f"{klass.__module__}.{klass.__qualname__}", **params}

    def __repr__(self) -> str:
        return f"<SpyralPhase {self.name!r} wrapping {type(self.spyral_phase).__name__}>"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
