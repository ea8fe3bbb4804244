"""``gyre run --slurm-jobs``: the options of workers started as Slurm batch jobs (dask-jobqueue)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ..execution import ExecutionModel

__all__ = ["add_slurm_options", "slurm_model", "wants_slurm"]


def _job_count(text: str) -> tuple[int, int | None]:
    """``N`` (a fixed number of jobs: ``(N, None)``) or ``MIN:MAX`` (adaptive)."""
    low, colon, high = text.partition(":")
    try:
        if not colon:
            return int(low), None
        return int(low), int(high)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or MIN:MAX worker jobs, e.g. 4 or 2:8, got {text!r}") from exc


def add_slurm_options(run: argparse.ArgumentParser, where: Any) -> None:
    """Add ``--slurm-jobs`` to the mutually exclusive group ``where`` and the other ``--slurm-*`` options to ``run``."""
    where.add_argument(
        "--slurm-jobs",
        type=_job_count,
        default=None,
        metavar="N|MIN:MAX",
        help="workers as N Slurm batch jobs (dask-jobqueue), or between MIN and MAX jobs as the work needs",
    )
    group = run.add_argument_group("Slurm worker jobs (with --slurm-jobs, --slurm-min or --slurm-max)")
    group.add_argument("--slurm-min", type=int, default=None, metavar="N", help="adaptive: at least N jobs")
    group.add_argument("--slurm-max", type=int, default=None, metavar="N", help="adaptive: at most N jobs")
    group.add_argument("--slurm-partition", default=None, help="partition of the worker jobs")
    group.add_argument("--slurm-account", default=None, help="account of the worker jobs")
    group.add_argument("--slurm-walltime", default="01:00:00", help="time limit of each worker job (01:00:00)")
    group.add_argument("--slurm-memory", default="2GB", help="memory of each worker job (2GB)")
    group.add_argument("--slurm-cores", type=int, default=1, help="cores of each worker job, one thread each (1)")
    group.add_argument(
        "--slurm-opt", action="append", default=[], metavar="OPTION", help="an extra #SBATCH line, e.g. --qos=short"
    )
    group.add_argument("--slurm-lifetime", default=None, help="workers leave after this long, e.g. 55m (< walltime)")
    group.add_argument("--slurm-lifetime-stagger", default=None, help="± this much, so they do not leave at once")
    group.add_argument("--slurm-interface", default=None, help="network interface of scheduler and workers, e.g. ib0")
    group.add_argument(
        "--slurm-worker-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds to wait for a first worker (300)",
    )


def wants_slurm(args: argparse.Namespace) -> bool:
    """Whether the command line asks for Slurm worker jobs."""
    return args.slurm_jobs is not None or args.slurm_min is not None or args.slurm_max is not None


def slurm_model(args: argparse.Namespace) -> ExecutionModel:
    """The :class:`~gyre.execution.slurm.SlurmModel` the ``--slurm-*`` options describe."""
    from ..execution.slurm import SlurmModel

    if any(getattr(args, name) for name in ("procs", "mpi", "scheduler_file", "address", "sync")):
        raise ConfigError("--slurm-min/--slurm-max start Slurm worker jobs: leave out --procs, --mpi, --address, ...")
    jobs, minimum, maximum = None, args.slurm_min, args.slurm_max
    if args.slurm_jobs is not None:
        if args.slurm_min is not None or args.slurm_max is not None:
            raise ConfigError("give --slurm-jobs N, --slurm-jobs MIN:MAX or --slurm-min/--slurm-max, not two of them")
        jobs, maximum = args.slurm_jobs
        if maximum is not None:
            jobs, minimum = None, jobs
    return SlurmModel(
        jobs,
        minimum_jobs=minimum,
        maximum_jobs=maximum,
        cores=args.slurm_cores,
        processes=args.slurm_cores,
        memory=args.slurm_memory,
        walltime=args.slurm_walltime,
        partition=args.slurm_partition,
        account=args.slurm_account,
        job_directives=args.slurm_opt,
        lifetime=args.slurm_lifetime,
        lifetime_stagger=args.slurm_lifetime_stagger,
        security=False if getattr(args, "insecure", False) else None,
        interface=args.slurm_interface,
        worker_timeout=args.slurm_worker_timeout,
        tuned=not args.dask_worker_defaults,
    )
