"""start_pipeline and generate_assets: the two calls a user makes.

A job goes through four steps, in the order the README's "Order of work" gives: prepare
(schemas, assets, run files: ``gyre.job.prepare``), plan (what is cached, what is computed),
run (the run chains through the driver on the execution model, watched) and report.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .adaptive.host import AdaptiveHost
from .errors import PipelineInterrupted
from .execution import ExecutionModel, resolve_model
from .execution.base import Engine
from .execution.launcher import refuse_launched_copies
from .execution.sync import SyncEngine
from .job.chains import compile_chains
from .job.interrupt import fill_unfinished, stop_on_signals
from .job.logs import driver_log
from .job.options import AdaptiveLimits, JobOptions, ResumePolicy
from .job.prepare import PreparedJob, cached_outcomes, plan_job, prepare_job
from .job.resume import ManifestWriter, ResumePlan
from .job.shared import clear_shared
from .job.submit import Driver
from .pipeline import Pipeline
from .report.job import job_report
from .report.model import PipelineReport
from .result import TaskOutcome
from .runs import format_runs
from .watch.board import RunBoard
from .watch.live import Watch, performance_report_path
from .watch.terminal import TerminalDisplay
from .workspace.layout import html_report_path, log_dir, report_path
from .workspace.lock import WorkspaceLock
from .workspace.manifest import Manifest

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["generate_assets", "run_job", "start_pipeline"]

log = logging.getLogger(__name__)


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
) -> PipelineReport:
    """Run ``pipeline`` over the runs ``run_min..run_max`` (inclusive) and return the report.

    Order of work: workspace, schema validation, assets, run discovery — any error there
    stops before a single run is computed — then every run's chain of phases on the
    execution model: a new ``LocalCluster`` of ``n_procs`` single-threaded worker processes
    by default, the given ``client``'s cluster, or ``cluster`` (``"sync"``, ``"local"``,
    ``"mpi"``, a scheduler address or file, or an ``ExecutionModel``).

    A failing (phase, run) fails that run only; the report says which and why, is written
    to ``<workspace>/report.json`` and printed unless ``disable_display``. ``fail_fast``
    cancels the rest at the first failure. ``window`` bounds the runs in flight at once
    (default: ``default_window``, from the worker threads). ``fuse=True`` runs each run's
    phases in one task: far less overhead on short tasks, same outcomes (see ``gyre.job.fusion``);
    the default ``None`` does so once the first phases prove shorter than 100 ms, ``False`` never.

    Phases may request adaptive children with ``ctx.spawn(...)``, and ``adaptive`` (or a
    ``pipeline.adaptive`` attribute) is called with each finished run's outcome to request
    more; children run on the same scheduler as soon as they are requested, up to
    ``max_generations`` generations and ``max_children`` children in all (requests beyond
    are refused and recorded). The call returns when every descendant has finished.
    While it runs, the dask dashboard and the gyre page (``<dashboard>/gyre``, a live run ×
    phase grid) are announced once; ``performance_report`` (``True`` or a path, relative to
    the workspace) records distributed's HTML performance report. At the end the report is
    also written as ``<workspace>/report.html``.

    Finished work is never redone: a (phase, run) whose manifest record matches (same
    configuration and inputs, artifacts intact per ``resume``, a :class:`ResumePolicy`) is
    reported ``cached`` without running; ``force`` recomputes everything, ``force_phases``
    those phases and everything after them. One pipeline at a time holds the workspace
    (``WorkspaceLockedError`` otherwise). SIGINT/SIGTERM stop the job cleanly: the report so
    far is written and ``PipelineInterrupted`` (a ``KeyboardInterrupt``) is raised.
    """
    options = JobOptions(
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
    )
    return run_job(pipeline, run_min, run_max, resolve_model(cluster, n_procs=n_procs, client=client), options)


def run_job(
    pipeline: Pipeline, run_min: int, run_max: int, model: ExecutionModel, options: JobOptions
) -> PipelineReport:
    """``start_pipeline`` with its options as one :class:`~gyre.job.options.JobOptions`: prepare, plan, run, report."""
    refuse_launched_copies(model, entry="start_pipeline")
    model.log_directory = log_dir(pipeline.workspace_path)
    with ExitStack() as cluster:  # closed last: the cluster outlives the report's writing
        # under mpiexec every rank runs this call and only the driver rank comes out of open(),
        # so the workspace, assets and logs are prepared once; otherwise the cluster starts
        # only once the plan says it is needed
        engine: Engine | None = cluster.enter_context(model.open()) if model.splits_processes else None
        if engine is None:
            cluster.enter_context(model.driver_logs())  # also while the cluster closes
        pipeline.create_workspace()
        with (
            driver_log(pipeline.workspace_path),
            WorkspaceLock(pipeline.workspace_path),
            Manifest(pipeline.workspace_path, flush_every=0.5) as manifest,  # closed before the lock
            stop_on_signals(),
        ):
            job = prepare_job(pipeline, run_min, run_max, options)
            plan = plan_job(job, manifest, options)
            if engine is None and not (plan.count("compute") or plan.count("load")):
                log.info("every (phase, run) is cached: no cluster is started")
                engine = SyncEngine(raise_errors=False)
            engine = engine or cluster.enter_context(model.open())
            outcomes, host, interrupted = _run(job, plan, engine, model, manifest, options)
            report = job_report(
                job,
                outcomes,
                execution=model.describe(),
                dashboard_link=engine.dashboard_link,
                children=host.summaries(),
                notes=plan.notes(),
                interrupted=interrupted is not None,
            )
            if options.display:
                print(report.render(), flush=True)
                workspace = pipeline.workspace_path
                print(f"gyre: report written to {report_path(workspace)} and {html_report_path(workspace)}", flush=True)
            if interrupted is not None:
                interrupted.report = report
                raise interrupted
            return report
    raise AssertionError("unreachable")  # pragma: no cover


def _run(
    job: PreparedJob, plan: ResumePlan, engine: Engine, model: ExecutionModel, manifest: Manifest, options: JobOptions
) -> tuple[list[TaskOutcome], AdaptiveHost, PipelineInterrupted | None]:
    """Every run's chain through the driver, watched; on SIGINT/SIGTERM the unfinished are skipped."""
    pipeline, selection = job.pipeline, job.selection
    log.info(
        "starting %s: runs %d-%d (%d found), seed %d, on %s",
        pipeline.name, job.run_min, job.run_max, len(selection.found), job.seed, model.describe(),
    )  # fmt: skip
    names = [p.name for p in pipeline.phases]
    chains = compile_chains(pipeline, selection, seed=job.seed, token=job.token, raise_errors=engine.raise_errors)
    host = AdaptiveHost(
        pipeline,
        seed=job.seed,
        token=job.token,
        raise_errors=engine.raise_errors,
        limits=options.limits,
        adaptive=options.adaptive if options.adaptive is not None else getattr(pipeline, "adaptive", None),
    )
    board = RunBoard(
        pipeline=pipeline.name,
        key=f"{pipeline.name}-{job.token}",
        phases=names,
        runs=selection.runs,
        missing=selection.missing,
    )
    title = f"{pipeline.name}, runs {format_runs(selection.runs)}"
    display = TerminalDisplay(names, len(selection.found), enabled=options.display, title=title)
    report_path = performance_report_path(pipeline.workspace_path, options.performance_report)
    watch = Watch(display, engine, model, board, performance_report=report_path)
    cached = cached_outcomes(chains, plan)
    log.info("resume: %d (phase, run)s cached, %d to compute", len(cached), plan.count("compute"))
    writer = ManifestWriter(manifest, plan)
    driver = Driver(engine, chains, options, listeners=[writer, watch, host], cached=cached)
    host.attach(driver)
    try:
        with watch:
            return driver.run(), host, None
    except PipelineInterrupted as exc:
        reason = f"interrupted by {signal.Signals(exc.signum).name}"
        driver.cancel(reason)
        writer.catch_up(driver.outcomes)  # the signal may have come between an outcome and its record
        return fill_unfinished(chains, driver.outcomes, reason), host, exc
    finally:
        _release_shared(engine, job.token)
        host.release(engine)


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


def _release_shared(engine: Engine, token: str) -> None:
    try:
        engine.run_everywhere(clear_shared, token)
    except Exception as exc:  # noqa: BLE001 - cleanup must never hide the job's result
        log.warning("could not release shared data on the workers: %s", exc)
