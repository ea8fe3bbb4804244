"""The run step of a job: every run chain through the driver, watched, with its adaptive children.

The driver (``gyre.job.submit``) submits; the manifest writer, the watch (terminal, the
gyre page, the performance report) and the adaptive host listen to its outcomes.
"""

from __future__ import annotations

import logging

from ..adaptive.host import AdaptiveHost
from ..errors import PipelineInterrupted
from ..execution import ExecutionModel
from ..execution.base import Engine
from ..job.chains import compile_chains
from ..job.costs import CostModel, computed_phases
from ..job.deadline import Deadline, stop_at
from ..job.interrupt import fill_unfinished
from ..job.options import JobOptions
from ..job.prepare import PreparedJob, cached_outcomes
from ..job.resume import ManifestWriter, ResumePlan
from ..job.shared import clear_shared
from ..job.splitting import split_chains
from ..job.submit import Driver
from ..result import TaskOutcome
from ..runs import format_runs
from ..watch.board import RunBoard
from ..watch.live import Watch, performance_report_path
from ..watch.terminal import TerminalDisplay
from ..workspace.manifest import Manifest
from ..workspace.parts import PartJournal

__all__ = ["watched_run"]

log = logging.getLogger(__name__)


def watched_run(
    job: PreparedJob,
    plan: ResumePlan,
    engine: Engine,
    model: ExecutionModel,
    manifest: Manifest,
    options: JobOptions,
    *,
    cluster_started: bool = True,
    costs: CostModel | None = None,
    deadline: Deadline | None = None,
) -> tuple[list[TaskOutcome], AdaptiveHost, PipelineInterrupted | None]:
    """Every run's chain through the driver, largest predicted cost first, watched; on SIGINT/SIGTERM
    or at the ``deadline``'s margin the unfinished are skipped.

    ``cluster_started=False`` says that the plan computes nothing and no cluster was started
    for it: the display says so instead of naming the execution model.
    """
    pipeline, selection = job.pipeline, job.selection
    log.info(
        "starting %s: runs %d-%d (%d found), seed %d, on %s",
        pipeline.name, job.run_min, job.run_max, len(selection.found), job.seed, model.describe(),
    )  # fmt: skip
    names = [p.name for p in pipeline.phases]
    costs = costs if costs is not None else CostModel.from_manifest(manifest, pipeline, selection)
    computed = computed_phases(plan)
    cells = [(phase, run) for run, phases in computed.items() for phase in phases]
    log.info("%s", costs.summary(cells))
    order = costs.largest_first(selection.found, computed)
    chains = compile_chains(
        pipeline, selection, seed=job.seed, token=job.token, raise_errors=engine.raise_errors, order=order
    )
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
        skipped=selection.skipped,
    )
    title = f"{pipeline.name}, runs {format_runs(selection.runs)}"
    display = TerminalDisplay(
        names, len(selection.found), enabled=options.display, title=title, weights=costs.weights(cells)
    )
    report_path = performance_report_path(pipeline.workspace_path, options.performance_report)
    cached = cached_outcomes(chains, plan)
    watch = Watch(
        display,
        engine,
        model,
        board,
        performance_report=report_path,
        token=job.token,
        cached_only=None if cluster_started else len(cached),
    )
    log.info("resume: %d (phase, run)s cached, %d to compute", len(cached), plan.count("compute"))
    parts = PartJournal(pipeline.workspace_path, flush_every=0.5)
    split = split_chains(
        chains,
        plan,
        n_threads=engine.n_threads,
        cost=costs.predictor(cells),  # learned seconds; None (event counts) if a cell has none
        journal=parts,
        policy=options.resume,
        enabled=options.split,
    )
    chains = split.chains
    writer = ManifestWriter(manifest, plan, parts=parts)
    driver = Driver(
        engine,
        chains,
        options,
        listeners=[writer, costs, watch, host],
        cached={**cached, **split.cached},
        costs=costs,
        deadline=deadline,
    )
    host.attach(driver)
    from ..job.worker_log import worker_logs  # imports distributed

    try:
        with watch, parts, worker_logs(engine.client, pipeline.workspace_path, token=job.token), stop_at(deadline):
            return driver.run(), host, None
    except PipelineInterrupted as exc:
        exc.take()
        reason = str(exc)
        driver.cancel(reason)
        writer.catch_up(driver.outcomes)  # the signal may have come between an outcome and its record
        return fill_unfinished(chains, driver.outcomes, reason), host, exc
    finally:
        _release_shared(engine, job.token)
        host.release(engine)


def _release_shared(engine: Engine, token: str) -> None:
    try:
        engine.run_everywhere(clear_shared, token)
    except Exception as exc:  # noqa: BLE001 - cleanup must never hide the job's result
        log.warning("could not release shared data on the workers: %s", exc)
