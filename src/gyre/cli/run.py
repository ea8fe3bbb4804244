"""``gyre run``: run a pipeline over a range of runs, or with ``--dry-run`` only show what it would do."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..execution import ExecutionModel, LocalModel, SchedulerModel, SyncModel
from ..job.options import AdaptiveLimits
from ..pipeline import Pipeline
from .common import PIPELINE_HELP, add_plan_options, pipeline_of, plan_options, run_range
from .slurm import add_slurm_options, slurm_model, wants_slurm

__all__ = ["add_commands", "parse_walltime", "print_plan", "procs"]


def procs(text: str) -> int:
    """``--procs``: a positive number of worker processes; 0 is refused, not guessed."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--procs takes a number of worker processes, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--procs {value}: give 1 or more worker processes; gyre does not take 0 to mean all cores, "
            "which on a shared machine is rarely meant: write --procs $(nproc) for that"
        )
    return value


def parse_walltime(text: str) -> float:
    """Seconds of a walltime written as Slurm does: ``MM``, ``MM:SS``, ``H:MM:SS`` or ``D-H[:MM[:SS]]``.

    Raises
    ------
    ConfigError
        Not such a time.
    """
    days, _, clock = text.strip().rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        whole_days = int(days) if days else 0
    except ValueError:
        parts = []
    if not parts or len(parts) > 3 or any(p < 0 for p in parts) or (days and whole_days < 0):
        raise ConfigError(f"walltime {text!r} is not a time like 3:55:00, 55:00, 90 (minutes) or 1-12:00:00")
    if days:  # D-H, D-H:MM, D-H:MM:SS
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    elif len(parts) == 1:  # minutes
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:  # minutes:seconds
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = parts
    return float(((whole_days * 24 + hours) * 60 + minutes) * 60 + seconds)


def _walltime(text: str) -> float | str | None:
    """``--walltime``: the deadline as epoch seconds, ``"slurm"`` or ``None`` (``none``)."""
    if text.lower() == "none":
        return None
    if text.lower() == "slurm":
        return "slurm"
    try:
        seconds = parse_walltime(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return _process_started() + seconds


def _process_started() -> float:
    """When this process started (epoch seconds): a walltime counts from there, as the batch system's does."""
    import psutil

    try:
        return float(psutil.Process().create_time())
    except psutil.Error:
        return time.time()


def add_commands(sub: Any) -> None:
    """Add ``run`` to the subcommands."""
    run = sub.add_parser("run", help="run a pipeline over a range of runs (--dry-run: show the plan only)")
    run.set_defaults(handler=_run)
    run.add_argument("pipeline", help=PIPELINE_HELP)
    run.add_argument("--runs", type=run_range, required=True, help="inclusive range, e.g. 1-400")
    run.add_argument(
        "--dry-run",
        "-n",
        action="store_true",
        help="compute nothing: print per phase what would be computed and why; exit 0 if nothing would be, else 1",
    )
    run.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--procs", type=procs, default=None, help="local worker processes, 1 or more (default 1)")
    where.add_argument("--mpi", action="store_true", help="under mpiexec via dask-mpi")
    where.add_argument("--scheduler-file", type=Path, help="connect to the scheduler that wrote this file")
    where.add_argument("--address", help="connect to the scheduler at this address")
    where.add_argument("--sync", action="store_true", help="in this process, exceptions into the debugger")
    add_slurm_options(run, where)
    run.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS for a cluster across hosts (--mpi, --slurm-jobs) or behind a scheduler file: "
        "only on a network only you reach",
    )
    run.add_argument(
        "--dask-worker-defaults",
        action="store_true",
        help="workers gyre starts keep dask's settings (profiler on, no core binding)",
    )
    add_plan_options(run)
    run.add_argument("--no-display", action="store_true", help="no progress display and no report printout")
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failed run")
    run.add_argument("--max-generations", type=int, default=3, help="adaptive children: generations allowed")
    run.add_argument("--max-children", type=int, default=100, help="adaptive children: total allowed")
    run.add_argument(
        "--performance-report",
        nargs="?",
        const=True,
        default=None,
        metavar="PATH",
        help="write dask's HTML performance report (default PATH: performance-report.html in the workspace)",
    )
    run.add_argument("--window", type=int, default=None, help="runs in flight at once (default 8 per worker)")
    run.add_argument(
        "--fuse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each run's phases in one task, or never (default: once phases prove shorter than 100 ms)",
    )
    run.add_argument(
        "--walltime",
        type=_walltime,
        default="slurm",
        metavar="[D-]H:MM:SS",
        help="stop in time for a walltime counted from this command's start, e.g. 3:55:00; 'none': no deadline "
        "(default: the Slurm job's end time, inside one); exits with 3 when stopped at it",
    )
    run.add_argument(
        "--deadline-margin", type=float, default=None, metavar="SECONDS", help="stop this long before the deadline"
    )
    run.add_argument(
        "--no-split",
        action="store_true",
        help="run every run whole, even when a phase declares a Split (default: split the tail runs by event)",
    )


def print_plan(pipeline: Pipeline, args: argparse.Namespace, *, as_json: bool) -> int:
    """Print the plan of ``pipeline`` over ``args.runs``; the plan's exit status (0: nothing to compute)."""
    from ..job.dryrun import dry_run

    n_threads = _local_threads(args)
    plan = dry_run(pipeline, args.runs[0], args.runs[1], plan_options(args), n_threads=n_threads)
    if as_json:
        print(json.dumps(plan.to_dict(), indent=1))
    else:
        print(plan.render())
    return plan.exit_status


def _local_threads(args: argparse.Namespace) -> int | None:
    """The worker threads the job would have, when known before it starts (locally); they decide the parts."""
    if not hasattr(args, "procs"):  # gyre validate: where it would run is not asked
        return None
    if args.mpi or args.scheduler_file is not None or args.address or wants_slurm(args):
        return None
    return 1 if args.sync else (args.procs or 1)


def _model(args: argparse.Namespace) -> ExecutionModel:
    if args.sync:
        return SyncModel()
    if args.mpi:
        from ..execution.mpi import MPIModel

        return MPIModel(tuned=not args.dask_worker_defaults, security=False if args.insecure else None)
    if args.scheduler_file is not None:
        return SchedulerModel(scheduler_file=args.scheduler_file, security=False if args.insecure else None)
    if args.address:
        return SchedulerModel(address=args.address)
    if wants_slurm(args):
        return slurm_model(args)
    return LocalModel(args.procs or 1, tuned=not args.dask_worker_defaults)


def _run(args: argparse.Namespace) -> int:
    from ..errors import PipelineInterrupted
    from ..launch import run_job

    if args.json and not args.dry_run:
        raise ConfigError("--json goes with --dry-run (a job's report is in <workspace>/report.json)")
    pipeline = pipeline_of(args)
    if args.dry_run:
        return print_plan(pipeline, args, as_json=args.json)
    options = plan_options(
        args,
        window=args.window,
        fuse=args.fuse,
        fail_fast=args.fail_fast,
        limits=AdaptiveLimits(max_generations=args.max_generations, max_children=args.max_children),
        performance_report=args.performance_report,
        display=not args.no_display,
        split=not args.no_split,
        deadline=args.walltime,
        deadline_margin=args.deadline_margin,
    )
    try:
        report = run_job(pipeline, args.runs[0], args.runs[1], _model(args), options)
    except PipelineInterrupted as exc:
        summary = exc.report.summary() if exc.report is not None else "nothing finished"  # type: ignore[attr-defined]
        print(f"gyre: {exc}: {summary}; run the same command again to resume", file=sys.stderr)
        return exc.exit_code
    if report.ok:
        return 0
    print(f"gyre: {report.summary()}", file=sys.stderr)
    return 1
