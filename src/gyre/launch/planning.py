"""``gyre.plan``: what ``start_pipeline`` would do with the same arguments, and why, before anything runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..execution import ExecutionModel
from ..job.dryrun import JobPlan, dry_run
from ..job.options import ResumePolicy
from ..pipeline import Pipeline
from .start import job_options

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["plan"]


def plan(
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
    split: bool = True,
) -> JobPlan:
    """What ``start_pipeline`` with these arguments would do per (phase, run), and why; computes nothing.

    Takes ``start_pipeline``'s arguments, so a call can be turned into its plan by changing
    its name. The decisions are the resume planner's own: ``compute`` (never made, or the last
    attempt failed), ``stale`` (made, but its configuration, code version, run file, upstream
    or artifact changed, or it is forced), ``cached`` or ``missing input``; each (phase, run)
    to compute also has its predicted cost and the predictor that gave it. No cluster is
    started, no asset built, nothing written in the workspace and no lock taken (see
    ``gyre.job.dryrun``); of the cluster options only the worker threads of a local cluster
    (``n_procs``) count: they decide which runs a ``Split`` phase cuts into parts.
    ``print(plan(...).render())`` shows it grouped by phase and reason; ``.to_dict()`` is what
    ``gyre run --dry-run --json`` prints.
    """
    del client  # where it would run does not change what would run, only how big runs are cut
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
    )
    return dry_run(pipeline, run_min, run_max, options, n_threads=local_threads(n_procs, cluster))


def local_threads(n_procs: int, cluster: ExecutionModel | str | None) -> int | None:
    """The worker threads of a job started with ``n_procs`` and ``cluster``, when known before it starts.

    A local cluster's are (``n_procs`` processes of one thread); an MPI job's, a scheduler's
    or Slurm worker jobs' are known only once they have started.
    """
    if cluster is None or cluster == "local":
        return max(1, n_procs)
    if cluster == "sync":
        return 1
    if isinstance(cluster, ExecutionModel) and cluster.name in ("local", "sync"):
        return max(1, int(getattr(cluster, "n_procs", 1))) * max(1, int(getattr(cluster, "threads_per_worker", 1)))
    return None
