"""The one-call migration: a Spyral ``Pipeline`` as a gyre pipeline, and a drop-in ``start_pipeline``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...launch import start_pipeline as gyre_start_pipeline
from ...pipeline import Pipeline
from ...report.model import PipelineReport
from ...runs import discover_runs
from .phase import SpyralPhase

__all__ = ["from_spyral_pipeline", "start_pipeline"]

log = logging.getLogger(__name__)


def from_spyral_pipeline(pipeline: Any, *, seed: int | None = None, name: str = "spyral") -> Pipeline:
    """The gyre ``Pipeline`` equivalent to a Spyral ``Pipeline``: same phases, switches, workspace, traces.

    Each phase is wrapped in :class:`SpyralPhase` (phases already wrapped are kept). ``seed``
    fixes every random stream (``None``: a fresh one per job, recorded in the report).
    """
    for attr in ("phases", "active", "workspace", "traces"):
        if not hasattr(pipeline, attr):
            raise ConfigError(
                f"{pipeline!r} is not a Spyral Pipeline (no attribute {attr!r}); "
                "build it with spyral.Pipeline(phases, active, workspace_path, trace_path)"
            )
    phases = [p if isinstance(p, SpyralPhase) else SpyralPhase(p) for p in pipeline.phases]
    return Pipeline(
        phases, list(pipeline.active), Path(pipeline.workspace), Path(pipeline.traces), seed=seed, name=name
    )


def start_pipeline(
    pipeline: Any,
    run_min: int,
    run_max: int,
    n_procs: int = 1,
    disable_display: bool = False,
    runs_to_skip: Iterable[int] | None = None,
    **options: Any,
) -> PipelineReport:
    """Drop-in for ``spyral.start_pipeline``: run a Spyral (or gyre) ``Pipeline`` on gyre.

    Takes Spyral's arguments; ``options`` are gyre's (``seed``, ``client``, ``cluster``,
    ``fail_fast``, ``window``). Like Spyral, run files that are empty are skipped. Unlike
    Spyral, it returns the report (and raises on validation or asset errors).
    """
    seed = options.pop("seed", None)
    gyre_pipeline = pipeline if isinstance(pipeline, Pipeline) else from_spyral_pipeline(pipeline, seed=seed)
    skip = set(runs_to_skip or ())
    found = discover_runs(
        gyre_pipeline.trace_path, run_min, run_max, pattern=gyre_pipeline.run_pattern, runs_to_skip=skip
    ).found
    for run_file in found:
        if run_file.size == 0:
            log.info("skipping run %d: its file %s is empty (as Spyral does)", run_file.run, run_file.path)
            skip.add(run_file.run)
    return gyre_start_pipeline(gyre_pipeline, run_min, run_max, n_procs, disable_display, sorted(skip), **options)
