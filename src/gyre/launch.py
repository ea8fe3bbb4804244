"""start_pipeline and generate_assets: the two calls a user makes."""

from __future__ import annotations

import logging
import secrets
import signal
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .adaptive.host import AdaptiveHost, AdaptiveLimits, split_outcomes
from .errors import PipelineInterrupted
from .execution import ExecutionModel, resolve_model
from .execution.base import Engine
from .execution.launcher import refuse_launched_copies
from .execution.sync import SyncEngine
from .job.chains import compile_chains
from .job.interrupt import fill_unfinished, stop_on_signals
from .job.logs import driver_log
from .job.options import default_window
from .job.resume import ManifestWriter, ResumePolicy, plan_resume, workspace_seed
from .job.shared import clear_shared
from .job.submit import Driver
from .pipeline import Pipeline
from .report.html import write_html_report
from .report.model import PipelineReport, now
from .runs import discover_runs, format_runs
from .watch.board import RunBoard
from .watch.live import Watch, performance_report_path
from .watch.terminal import TerminalDisplay
from .workspace.atomic import sweep_temporaries
from .workspace.lock import WorkspaceLock
from .workspace.manifest import Manifest

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["generate_assets", "start_pipeline"]

log = logging.getLogger(__name__)


class _ResumeArgs(NamedTuple):
    force: bool
    force_phases: tuple[str, ...]
    policy: ResumePolicy


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
    limits = AdaptiveLimits(max_generations=max_generations, max_children=max_children)
    strategy = adaptive if adaptive is not None else getattr(pipeline, "adaptive", None)
    model = resolve_model(cluster, n_procs=n_procs, client=client)
    refuse_launched_copies(model, entry="start_pipeline")
    model.log_directory = pipeline.workspace_path / "log"
    with ExitStack() as stack:
        engine_source: Engine | Callable[[], Engine]
        if model.splits_processes:
            # under mpiexec every rank runs this call: only the driver rank comes out of open(),
            # so the workspace, assets and logs are prepared once, by the driver
            engine_source = stack.enter_context(model.open())
        else:
            stack.enter_context(model.driver_logs())  # also while the cluster closes

            # the cluster starts only once validation, assets and the resume plan say it is needed
            def engine_source() -> Engine:
                return stack.enter_context(model.open())

        return _run(
            pipeline,
            run_min,
            run_max,
            runs_to_skip,
            model,
            engine_source,
            disable_display=disable_display,
            fail_fast=fail_fast,
            window=window,
            adaptive=strategy,
            limits=limits,
            performance_report=performance_report,
            resume=_ResumeArgs(force, tuple(force_phases), resume or ResumePolicy()),
            fuse=fuse,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _run(
    pipeline: Pipeline,
    run_min: int,
    run_max: int,
    runs_to_skip: Iterable[int] | None,
    model: ExecutionModel,
    engine_source: Engine | Callable[[], Engine],
    *,
    disable_display: bool,
    fail_fast: bool,
    window: int | None,
    adaptive: Callable[..., Any] | None = None,
    limits: AdaptiveLimits | None = None,
    performance_report: str | Path | bool | None = None,
    resume: _ResumeArgs,
    fuse: bool | None = None,
) -> PipelineReport:
    pipeline.create_workspace()
    with (
        driver_log(pipeline.workspace_path),
        WorkspaceLock(pipeline.workspace_path),
        Manifest(pipeline.workspace_path, flush_every=0.5) as manifest,  # closed before the lock
        stop_on_signals(),
    ):
        pipeline.validate()
        pipeline.create_assets()
        selection = discover_runs(
            pipeline.trace_path, run_min, run_max, pattern=pipeline.run_pattern, runs_to_skip=runs_to_skip
        )
        if selection.missing:
            log.warning(
                "%d runs of %d-%d have no file: %s", len(selection.missing), run_min, run_max, list(selection.missing)
            )
        seed = workspace_seed(pipeline.workspace_path, pipeline.seed)
        sweep_temporaries(p.artifact_dir(pipeline.workspace_path) for p in pipeline.phases)
        token = secrets.token_hex(4)
        started = now()
        display = TerminalDisplay(
            [p.name for p in pipeline.phases],
            len(selection.found),
            enabled=not disable_display,
            title=f"{pipeline.name}, runs {format_runs(selection.runs)}",
        )
        plan = plan_resume(
            pipeline, selection, seed=seed, manifest=manifest, force=resume.force,
            force_phases=resume.force_phases, policy=resume.policy,
        )  # fmt: skip
        manifest.compact()  # we hold the lock: nobody else appends meanwhile
        if isinstance(engine_source, Engine):
            engine = engine_source
        elif plan.count("compute") or plan.count("load"):
            engine = engine_source()
        else:  # everything is cached: no cluster to start
            log.info("every (phase, run) is cached: no cluster is started")
            engine = SyncEngine(raise_errors=False)
        log.info(
            "starting %s: runs %d-%d (%d found), seed %d, on %s",
            pipeline.name,
            run_min,
            run_max,
            len(selection.found),
            seed,
            model.describe(),
        )
        chains = compile_chains(pipeline, selection, seed=seed, token=token, raise_errors=engine.raise_errors)
        host = AdaptiveHost(
            pipeline, seed=seed, token=token, raise_errors=engine.raise_errors, limits=limits, adaptive=adaptive
        )
        board = RunBoard(
            pipeline=pipeline.name,
            key=f"{pipeline.name}-{token}",
            phases=[p.name for p in pipeline.phases],
            runs=selection.runs,
            missing=selection.missing,
        )
        watch = Watch(
            display,
            engine,
            model,
            board,
            performance_report=performance_report_path(pipeline.workspace_path, performance_report),
        )
        cached = {
            key: outcome
            for chain in chains
            for spec, key in zip(chain.tasks, chain.keys)
            if (outcome := plan.cached_outcome(spec.phase.name, spec.run)) is not None
        }
        log.info("resume: %d (phase, run)s cached, %d to compute", len(cached), plan.count("compute"))
        driver = Driver(
            engine,
            chains,
            window=window if window is not None else default_window(engine.n_threads),
            fail_fast=fail_fast,
            listeners=[writer := ManifestWriter(manifest, plan), watch, host],
            cached=cached,
            fuse=fuse,
        )
        host.attach(driver)
        interrupted: PipelineInterrupted | None = None
        try:
            with watch:
                outcomes = driver.run()
        except PipelineInterrupted as exc:
            interrupted = exc
            reason = f"interrupted by {signal.Signals(exc.signum).name}"
            driver.cancel(reason)
            writer.catch_up(driver.outcomes)  # the signal may have come between an outcome and its record
            outcomes = fill_unfinished(chains, driver.outcomes, reason)
        finally:
            _release_shared(engine, token)
            host.release(engine)
        root_outcomes, child_outcomes = split_outcomes(outcomes)
        report = PipelineReport(
            pipeline=pipeline.name,
            workspace=pipeline.workspace_path,
            seed=seed,
            execution=model.describe(),
            phases=tuple(p.name for p in pipeline.phases),
            runs=selection.runs,
            missing_runs=selection.missing,
            skipped_runs=selection.skipped,
            outcomes=root_outcomes,
            started=started,
            finished=now(),
            dashboard_link=engine.dashboard_link,
            children=host.summaries(),
            child_outcomes=child_outcomes,
            interrupted=interrupted is not None,
            notes=tuple(plan.notes()),
        )
        path, html = report.write(), write_html_report(report)
        log.info("%s; report written to %s and %s", report.summary(), path, html)
        if not disable_display:
            print(report.render(), flush=True)
            print(f"gyre: report written to {path} and {html}", flush=True)
        if interrupted is not None:
            interrupted.report = report
            raise interrupted
        return report


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
