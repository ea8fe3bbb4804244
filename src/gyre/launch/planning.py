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
    or artifact changed, or it is forced), ``cached`` or ``missing input``. The cluster options
    are accepted and ignored: no cluster is started, no asset built, nothing written in the
    workspace and no lock taken (see ``gyre.job.dryrun``). ``print(plan(...).render())`` shows it
    grouped by phase and reason; ``.to_dict()`` is what ``gyre run --dry-run --json`` prints.
    """
    del n_procs, client, cluster  # where it would run does not change what would run
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
    return dry_run(pipeline, run_min, run_max, options)
