"""start_pipeline and generate_assets: the two calls a user makes.

``start_pipeline`` turns its keyword arguments into one :class:`~gyre.job.options.JobOptions`
and the ``cluster`` argument into an execution model, then hands both to
:func:`gyre.launch.job.run_job`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..execution import ExecutionModel, resolve_model
from ..job.logs import driver_log
from ..job.options import AdaptiveLimits, JobOptions, ResumePolicy
from ..pipeline import Pipeline
from ..report.model import PipelineReport
from .guard import refuse_unguarded_main
from .job import run_job

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["generate_assets", "job_options", "start_pipeline"]


def start_pipeline(
    pipeline: Pipeline,
    run_min: int,
    run_max: int,
    n_procs: int = 1,
    disable_display: bool = False,
    runs_to_skip: Iterable[int] | None = None,
    *,
    client: Client | None = None,
    cluster: ExecutionModel | str | None = None,
    fail_fast: bool = False,
    window: int | None = None,
    adaptive: Callable[..., Any] | None = None,
    max_generations: int = 3,
    max_children: int = 100,
    performance_report: str | Path | bool | None = None,
    force: bool = False,
    force_phases: Iterable[str] = (),
    resume: ResumePolicy | None = None,
    fuse: bool | None = None,
    deadline: datetime | float | str | None = "slurm",
    deadline_margin: float | None = None,
    split: bool = True,
) -> PipelineReport:
    """Run ``pipeline`` over the runs ``run_min..run_max`` (inclusive) and return the report.

    Order of work: workspace, schema validation, assets, run discovery — any error there
    stops before a single run is computed — then every run's chain of phases on the
    execution model: a new ``LocalCluster`` of ``n_procs`` single-threaded worker processes
    by default, the given ``client``'s cluster, or ``cluster`` (``"sync"``, ``"local"``,
    ``"mpi"``, ``"slurm"`` for ``n_procs`` Slurm worker jobs, a scheduler address or file, or
    an ``ExecutionModel`` such as ``SlurmModel(...)``).

    A failing (phase, run) fails that run only; the report says which and why, is written
    to ``<workspace>/report.json`` and printed unless ``disable_display``. ``fail_fast``
    cancels the rest at the first failure. ``window`` bounds the runs in flight at once
    (default: ``default_window``, from the worker threads). ``fuse=True`` runs each run's
    phases in one task: far less overhead on short tasks, same outcomes (see ``gyre.job.fusion``);
    the default ``None`` does so once the first phases prove shorter than 100 ms, ``False`` never.
    Phases that declare a ``gyre.Split`` have their tail runs split by event range and merged
    (same artifacts as unsplit); ``split=False`` runs every run whole.

    Phases may request adaptive children with ``ctx.spawn(...)``, and ``adaptive`` (or a
    ``pipeline.adaptive`` attribute) is called with each finished run's outcome to request
    more; children run on the same scheduler as soon as they are requested, up to
    ``max_generations`` generations and ``max_children`` children in all (requests beyond
    are refused and recorded). The call returns when every descendant has finished.
    While it runs, the dask dashboard and the gyre page (``<dashboard>/gyre``: the live run ×
    phase grid, worker timeline, grouped failures, throughput and ETA) are announced once;
    ``performance_report`` (``True`` or a path, relative to the workspace) records
    distributed's HTML performance report. At the end the report is
    also written as ``<workspace>/report.html``.

    Finished work is never redone: a (phase, run) whose manifest record matches (same
    configuration and inputs, artifacts intact per ``resume``, a :class:`ResumePolicy`) is
    reported ``cached`` without running; ``force`` recomputes everything, ``force_phases``
    those phases and everything after them. One pipeline at a time holds the workspace
    (``WorkspaceLockedError`` otherwise). SIGINT/SIGTERM stop the job cleanly: the report so
    far is written and ``PipelineInterrupted`` (a ``KeyboardInterrupt``) is raised.

    Runs go largest predicted cost first: each (phase, run)'s last duration, a rate fitted
    on earlier runs, or its file size (``gyre.job.costs``). ``deadline`` (a ``datetime``, naive
    ones in local time; seconds from now; ``"slurm"``, the default: the end of the Slurm job
    this runs in, if any; ``None``: none) keeps (phase, run)s predicted to end after it less
    ``deadline_margin`` seconds (default: a tenth of the time left, 10 s to 3 min) from starting,
    and at that point stops the job as SIGTERM does. Either way, after writing the report,
    ``DeadlineReached`` (a ``PipelineInterrupted``; ``.report``, ``report.interrupted`` true) is
    raised: call again (e.g. in the next allocation) to do the rest.
    """
    model = resolve_model(cluster, n_procs=n_procs, client=client)
    refuse_unguarded_main(model)
    options = job_options(
        runs_to_skip=runs_to_skip,
        disable_display=disable_display,
        fail_fast=fail_fast,
        window=window,
        adaptive=adaptive,
        max_generations=max_generations,
        max_children=max_children,
        performance_report=performance_report,
        force=force,
        force_phases=force_phases,
        resume=resume,
        fuse=fuse,
        split=split,
        deadline=deadline,
        deadline_margin=deadline_margin,
    )
    return run_job(pipeline, run_min, run_max, model, options)


def job_options(
    *,
    runs_to_skip: Iterable[int] | None,
    disable_display: bool,
    fail_fast: bool,
    window: int | None,
    adaptive: Callable[..., Any] | None,
    max_generations: int,
    max_children: int,
    performance_report: str | Path | bool | None,
    force: bool,
    force_phases: Iterable[str],
    resume: ResumePolicy | None,
    fuse: bool | None,
    split: bool = True,
    deadline: datetime | float | str | None = "slurm",
    deadline_margin: float | None = None,
) -> JobOptions:
    """The :class:`JobOptions` of ``start_pipeline``'s keyword arguments (``gyre.plan`` takes the same)."""
    return JobOptions(
        window=window,
        fuse=fuse,
        fail_fast=fail_fast,
        force=force,
        force_phases=tuple(force_phases),
        resume=resume or ResumePolicy(),
        adaptive=adaptive,
        limits=AdaptiveLimits(max_generations=max_generations, max_children=max_children),
        performance_report=performance_report,
        display=not disable_display,
        runs_to_skip=frozenset(runs_to_skip or ()),
        deadline=deadline_seconds(deadline),
        deadline_margin=deadline_margin,
        split=split,
    )


def deadline_seconds(deadline: datetime | float | str | None, *, now: float | None = None) -> float | str | None:
    """``start_pipeline``'s ``deadline`` as ``JobOptions`` takes it: epoch seconds, ``"slurm"`` or ``None``.

    Raises
    ------
    ConfigError
        Neither a datetime, a number of seconds, ``"slurm"`` nor ``None``.
    """
    if deadline is None:
        return None
    if isinstance(deadline, str) and deadline == "slurm":
        return "slurm"
    if isinstance(deadline, datetime):
        return deadline.timestamp()
    if isinstance(deadline, (int, float)) and not isinstance(deadline, bool):
        return (time.time() if now is None else now) + float(deadline)
    raise ConfigError(
        f"deadline={deadline!r} is not a datetime, seconds from now, 'slurm' (the Slurm job's end) or None"
    )


def generate_assets(pipeline: Pipeline) -> list[Path]:
    """Create the workspace and every active phase's assets without touching any run.

    Run it ahead of a batch job so the job's walltime goes to runs, not to tables.
    Returns the asset directories of the active phases.
    """
    pipeline.create_workspace()
    with driver_log(pipeline.workspace_path):
        pipeline.validate()
        pipeline.create_assets()
    return [phase.asset_dir(pipeline.workspace_path) for phase in pipeline.active_phases]
