"""One job in four named steps, in the order the README's "Order of work" gives.

prepare (schemas, assets, run files: ``gyre.job.prepare``), plan (what is cached, what is
computed), run (the run chains through the driver on the execution model, watched:
``gyre.launch.watched``) and report (``gyre.report.job``).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

from ..errors import DeadlineReached
from ..execution import ExecutionModel
from ..execution.base import Engine
from ..execution.launcher import refuse_launched_copies
from ..execution.sync import SyncEngine
from ..job.costs import CostModel, cost_notes
from ..job.deadline import NOT_STARTED, resolve_deadline
from ..job.interrupt import stop_before_the_job, stop_on_signals
from ..job.logs import driver_log
from ..job.options import JobOptions
from ..job.prepare import plan_job, prepare_job
from ..pipeline import Pipeline
from ..report.job import job_report
from ..report.model import PipelineReport
from ..workspace.layout import html_report_path, log_dir, report_path
from ..workspace.lock import WorkspaceLock
from ..workspace.manifest import Manifest
from .watched import watched_run

__all__ = ["run_job"]

log = logging.getLogger(__name__)


def run_job(
    pipeline: Pipeline, run_min: int, run_max: int, model: ExecutionModel, options: JobOptions
) -> PipelineReport:
    """``start_pipeline`` with its options as one :class:`~gyre.job.options.JobOptions`: prepare, plan, run, report."""
    refuse_launched_copies(model, entry="start_pipeline")
    model.log_directory = log_dir(pipeline.workspace_path)
    with stop_before_the_job(), ExitStack() as cluster:  # closed last: the cluster outlives the report's writing
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
            idle = engine is None and not (plan.count("compute") or plan.count("load"))
            if idle:
                log.info("every (phase, run) is cached: no cluster is started")
                engine = SyncEngine(raise_errors=False)
            engine = engine or cluster.enter_context(model.open())
            costs = CostModel.from_manifest(manifest, pipeline, job.selection)
            deadline = resolve_deadline(options)  # on the driver only: under mpiexec, one squeue, not one per rank
            notes = plan.notes() + cost_notes(costs, plan)  # before the job: the costs then learn from it
            outcomes, host, interrupted = watched_run(
                job, plan, engine, model, manifest, options, cluster_started=not idle, costs=costs, deadline=deadline
            )
            if interrupted is None and deadline is not None and any(o.reason == NOT_STARTED for o in outcomes):
                interrupted = deadline.reached()  # runs left for the next job: resumable, like the margin's stop
            report = job_report(
                job,
                outcomes,
                execution=f"{model.describe()}, not started: nothing to compute" if idle else model.describe(),
                dashboard_link=engine.dashboard_link,
                children=host.summaries(),
                notes=[
                    *notes,
                    *model.notes(),
                    *([str(interrupted)] if isinstance(interrupted, DeadlineReached) else []),
                ],
                interrupted=interrupted is not None,
            )
            if options.display:
                print(report.render(), flush=True)
                workspace = pipeline.workspace_path
                written = [str(p) for p in (report_path(workspace), html_report_path(workspace)) if p.exists()]
                print(f"gyre: report written to {' and '.join(written)}", flush=True)
            if interrupted is not None:
                interrupted.report = report
                raise interrupted
            return report
    raise AssertionError("unreachable")  # pragma: no cover
