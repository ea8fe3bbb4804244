"""The report of one job: built from its outcomes when it ends, written as report.json and report.html."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..adaptive.host import split_outcomes
from ..adaptive.lineage import ChildSummary
from ..job.prepare import PreparedJob
from ..result import TaskOutcome
from .html import write_html_report
from .model import PipelineReport, now

__all__ = ["job_report"]

log = logging.getLogger(__name__)


def job_report(
    job: PreparedJob,
    outcomes: Sequence[TaskOutcome],
    *,
    execution: str,
    dashboard_link: str | None,
    children: Sequence[ChildSummary],
    notes: Sequence[str],
    interrupted: bool,
) -> PipelineReport:
    """The report of a finished (or interrupted) job, written as report.json and report.html."""
    root_outcomes, child_outcomes = split_outcomes(outcomes)
    pipeline, selection = job.pipeline, job.selection
    report = PipelineReport(
        pipeline=pipeline.name,
        workspace=pipeline.workspace_path,
        seed=job.seed,
        execution=execution,
        phases=tuple(p.name for p in pipeline.phases),
        runs=selection.runs,
        missing_runs=selection.missing,
        skipped_runs=selection.skipped,
        outcomes=root_outcomes,
        started=job.started,
        finished=now(),
        dashboard_link=dashboard_link,
        children=tuple(children),
        child_outcomes=child_outcomes,
        interrupted=interrupted,
        notes=tuple(notes),
    )
    path = report.write()
    log.info("%s; report written to %s and %s", report.summary(), path, write_html_report(report))
    return report
