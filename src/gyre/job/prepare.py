"""Preparing a job and planning it: the steps before the first task, where every error stops the job.

:func:`prepare_job` checks the schemas, builds the assets, finds the run files, fixes the
seed and sweeps what killed tasks left behind; :func:`plan_job` decides, from the
manifest, which (phase, run)s are cached and which are computed. Neither starts a cluster
or computes a run, so a mistake in the pipeline or its inputs costs seconds, not an
allocation.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from ..pipeline import Pipeline
from ..result import TaskOutcome
from ..runs import RunSelection, discover_runs, format_runs
from ..workspace.atomic import sweep_temporaries
from ..workspace.manifest import Manifest
from .chains import RunChain
from .options import JobOptions
from .resume import ResumePlan, plan_resume, workspace_seed

__all__ = ["PreparedJob", "plan_job", "prepare_job"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedJob:
    """A job that may start: its pipeline, the run files found, its seed and its token."""

    pipeline: Pipeline
    run_min: int
    run_max: int
    selection: RunSelection
    seed: int
    #: distinguishes this job's task keys and shared data from any other job's on the same scheduler
    token: str
    started: datetime


def prepare_job(pipeline: Pipeline, run_min: int, run_max: int, options: JobOptions) -> PreparedJob:
    """Validate, build the assets, find the runs, fix the seed, sweep temporaries; computes no run.

    Call it holding the workspace's lock (the sweep removes other jobs' temporaries).
    """
    pipeline.validate()
    pipeline.create_assets()
    selection = discover_runs(
        pipeline.trace_path, run_min, run_max, pattern=pipeline.run_pattern, runs_to_skip=options.runs_to_skip
    )
    if selection.missing:
        count = len(selection.missing)
        log.warning(
            "%d run%s of %d-%d %s no file: %s",
            count,
            "" if count == 1 else "s",
            run_min,
            run_max,
            "has" if count == 1 else "have",
            format_runs(selection.missing),
        )
    seed = workspace_seed(pipeline.workspace_path, pipeline.seed)
    directories = [p.artifact_dir(pipeline.workspace_path) for p in pipeline.phases]
    sweep_temporaries([*directories, *(part for d in directories for part in d.glob("parts/*"))])  # split runs' parts
    return PreparedJob(
        pipeline=pipeline,
        run_min=run_min,
        run_max=run_max,
        selection=selection,
        seed=seed,
        token=secrets.token_hex(4),
        started=datetime.now(timezone.utc),
    )


def plan_job(job: PreparedJob, manifest: Manifest, options: JobOptions) -> ResumePlan:
    """The resume plan of ``job``: per (phase, run), cached or computed, and why; compacts the manifest.

    Call it holding the workspace's lock: compaction rewrites the manifest's journals.
    """
    plan = plan_resume(
        job.pipeline,
        job.selection,
        seed=job.seed,
        manifest=manifest,
        force=options.force,
        force_phases=options.force_phases,
        policy=options.resume,
    )
    manifest.compact()
    return plan


def cached_outcomes(chains: list[RunChain], plan: ResumePlan) -> dict[str, TaskOutcome]:
    """Task key → the ``cached`` outcome the driver records instead of submitting the task."""
    return {
        key: outcome
        for chain in chains
        for spec, key in zip(chain.tasks, chain.keys)
        if (outcome := plan.cached_outcome(spec.phase.name, spec.run)) is not None
    }
