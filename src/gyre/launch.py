"""start_pipeline and generate_assets: the two calls a user makes."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from .display import TerminalDisplay
from .driver import Driver
from .execution import ExecutionModel, resolve_model
from .execution.base import Engine
from .graph import compile_chains
from .logsetup import driver_log
from .pipeline import Pipeline
from .progress import PROGRESS_TOPIC
from .report import PipelineReport, now
from .runs import discover_runs
from .seeding import fresh_seed
from .shared import clear_shared
from .window import default_window

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["generate_assets", "start_pipeline"]

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
    fuse: bool = False,
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
    (default: ``default_window``, from the worker threads). ``fuse`` runs each run's
    phases in one task: far less overhead on short tasks, same outcomes (see ``gyre.fusion``).
    """
    model = resolve_model(cluster, n_procs=n_procs, client=client)
    if getattr(model, "splits_processes", False):
        # under mpiexec every rank runs this call: only the driver rank comes out of open(),
        # so the workspace, assets and logs are prepared once, by the driver
        with model.open() as engine:
            return _run(
                pipeline,
                run_min,
                run_max,
                runs_to_skip,
                model,
                engine,
                disable_display=disable_display,
                fail_fast=fail_fast,
                window=window,
                fuse=fuse,
            )
    with ExitStack() as stack:
        opened: list[Engine] = []

        def open_engine() -> Engine:
            opened.append(stack.enter_context(model.open()))
            return opened[0]

        return _run(
            pipeline,
            run_min,
            run_max,
            runs_to_skip,
            model,
            open_engine,
            disable_display=disable_display,
            fail_fast=fail_fast,
            window=window,
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
    fuse: bool = False,
) -> PipelineReport:
    pipeline.create_workspace()
    with driver_log(pipeline.workspace_path):
        pipeline.validate()
        pipeline.create_assets()
        selection = discover_runs(
            pipeline.trace_path, run_min, run_max, pattern=pipeline.run_pattern, runs_to_skip=runs_to_skip
        )
        if selection.missing:
            log.warning(
                "%d runs of %d-%d have no file: %s", len(selection.missing), run_min, run_max, list(selection.missing)
            )
        seed = pipeline.seed if pipeline.seed is not None else fresh_seed()
        token = secrets.token_hex(4)
        started = now()
        display = TerminalDisplay([p.name for p in pipeline.phases], len(selection.found), enabled=not disable_display)
        engine = engine_source if isinstance(engine_source, Engine) else engine_source()
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
        if engine.dashboard_link:
            log.info("dask dashboard at %s", engine.dashboard_link)
        if engine.client is not None:
            engine.client.subscribe_topic(PROGRESS_TOPIC, lambda event: display.run_progress(event[1]))
        driver = Driver(
            engine,
            chains,
            window=window if window is not None else default_window(engine.n_threads),
            fail_fast=fail_fast,
            listeners=[display],
            fuse=fuse,
        )
        display.start(dashboard_link=engine.dashboard_link, execution=model.describe())
        try:
            outcomes = driver.run()
        finally:
            display.stop()
            if engine.client is not None:
                engine.client.unsubscribe_topic(PROGRESS_TOPIC)
            _release_shared(engine, token)
        report = PipelineReport(
            pipeline=pipeline.name,
            workspace=pipeline.workspace_path,
            seed=seed,
            execution=model.describe(),
            phases=tuple(p.name for p in pipeline.phases),
            runs=selection.runs,
            missing_runs=selection.missing,
            skipped_runs=selection.skipped,
            outcomes=tuple(outcomes),
            started=started,
            finished=now(),
            dashboard_link=engine.dashboard_link,
        )
        path = report.write()
        log.info("%s; report written to %s", report.summary(), path)
        if not disable_display:
            print(report.render(), flush=True)
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
