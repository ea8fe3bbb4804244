"""The ``gyre`` command: init, assets, validate, graph, run, status, provenance."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigError, GyreError
from .execution import ExecutionModel, LocalModel, SchedulerModel, SyncModel
from .loader import load_pipeline
from .runs import discover_runs, parse_run_list, parse_run_range

__all__ = ["fill_batch_script", "main"]

TEMPLATE = Path(__file__).resolve().parent / "workspace_template"


def _run_range(text: str) -> tuple[int, int]:
    try:
        return parse_run_range(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gyre", description="Phase-structured analysis over HDF5 run files on dask.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline over a range of runs")
    run.add_argument("pipeline", help="path/to/module.py:name or package.module:name")
    run.add_argument("--runs", type=_run_range, required=True, help="inclusive range, e.g. 1-400")
    run.add_argument("--skip", default="", help="runs to leave out, e.g. 7,9,20-25")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--procs", type=int, default=None, help="local worker processes (default 1)")
    where.add_argument("--mpi", action="store_true", help="under mpiexec via dask-mpi")
    where.add_argument("--scheduler-file", type=Path, help="connect to the scheduler that wrote this file")
    where.add_argument("--address", help="connect to the scheduler at this address")
    where.add_argument("--sync", action="store_true", help="in this process, exceptions into the debugger")
    run.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS for a cluster across hosts (--mpi) or behind a scheduler file: only on a network only you reach",
    )
    run.add_argument(
        "--dask-worker-defaults",
        action="store_true",
        help="workers gyre starts keep dask's settings (profiler on, no core binding)",
    )
    run.add_argument("--seed", type=int, default=None, help="override the pipeline's seed")
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
    run.add_argument("--force", action="store_true", help="recompute everything, ignoring finished work")
    run.add_argument(
        "--force-phase", action="append", default=[], metavar="NAME", help="recompute NAME and all later phases"
    )
    run.add_argument(
        "--trust-mtime", action="store_true", help="reuse artifacts whose size and mtime match (no checksums)"
    )
    run.add_argument(
        "--hash-run-files", action="store_true", help="identify run files by content, not by size and mtime"
    )
    run.add_argument("--window", type=int, default=None, help="runs in flight at once (default 8 per worker)")
    run.add_argument(
        "--fuse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each run's phases in one task, or never (default: once phases prove shorter than 100 ms)",
    )

    status = sub.add_parser("status", help="per phase: runs done / stale / missing / failed in a workspace")
    status.add_argument("workspace", type=Path)
    status.add_argument("--trust-mtime", action="store_true", help="check sizes and mtimes, not checksums")

    provenance = sub.add_parser("provenance", help="how the artifact of one (phase, run) was made")
    provenance.add_argument("workspace", type=Path)
    provenance.add_argument("phase")
    provenance.add_argument("run", type=int)

    assets = sub.add_parser("assets", help="create the workspace and all assets, touching no run")
    assets.add_argument("pipeline")

    validate = sub.add_parser("validate", help="check schemas and show what would run (computes nothing)")
    validate.add_argument("pipeline")
    validate.add_argument("--runs", type=_run_range, default=None)

    graph = sub.add_parser("graph", help="print the phase/run graph")
    graph.add_argument("pipeline")
    graph.add_argument("--runs", type=_run_range, required=True)
    graph.add_argument("--format", choices=["dot"], default="dot")

    cluster = sub.add_parser(
        "cluster", help="under mpiexec: rank 0 a scheduler that writes --scheduler-file, the other ranks workers"
    )
    cluster.add_argument("--scheduler-file", type=Path, required=True, help="where the scheduler writes its address")
    cluster.add_argument("--shutdown", action="store_true", help="shut down the cluster behind the file and leave")
    cluster.add_argument("--log-dir", type=Path, default=None, help="distributed's records, one file per rank")
    cluster.add_argument("--insecure", action="store_true", help="no TLS credentials (default: per-job TLS)")
    cluster.add_argument(
        "--interface", default=None, help="network interface, e.g. ib0 (default: loopback on one host)"
    )
    cluster.add_argument("--nthreads", type=int, default=1, help="threads (tasks at once) per worker")
    cluster.add_argument("--memory-limit", default="auto", help="memory per worker, e.g. 4GB")
    cluster.add_argument("--dashboard-address", default="127.0.0.1:0", help="where rank 0 serves the dashboard")

    init = sub.add_parser("init", help="copy a starting workspace (pipeline module, config, batch scripts)")
    init.add_argument("directory", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gyre`` console script; returns the exit code.

    Until a job starts, a SIGTERM or SIGINT ends the command at once with 128 + the signal
    (see the package's ``__init__``); ``run_job`` then takes the signals over.
    """
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger = logging.getLogger("gyre")
    logger.addHandler(handler)  # for this command only: main() called twice logs each line once
    try:
        return int(_dispatch(args))
    except GyreError as exc:
        print(f"gyre: error: {exc}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "init":
        return _init(args.directory)
    if args.command == "cluster":
        from .execution.file_cluster import FileClusterConfig, serve_file_cluster, shut_down_file_cluster

        if args.shutdown:
            return 0 if shut_down_file_cluster(args.scheduler_file) else 1
        serve_file_cluster(
            FileClusterConfig(
                scheduler_file=args.scheduler_file,
                log_directory=args.log_dir,
                insecure=args.insecure,
                interface=args.interface,
                nthreads=args.nthreads,
                memory_limit=args.memory_limit,
                dashboard_address=args.dashboard_address,
            )
        )
        return 0
    if args.command in ("status", "provenance"):
        from .workspace.status import render_provenance, render_status

        if args.command == "status":
            print(render_status(args.workspace, verify="stat" if args.trust_mtime else "checksum"))
        else:
            print(render_provenance(args.workspace, args.phase, args.run))
        return 0
    pipeline = load_pipeline(args.pipeline)
    if getattr(args, "seed", None) is not None:
        pipeline.seed = args.seed
    if args.command == "assets":
        from .launch import generate_assets

        for directory in generate_assets(pipeline):
            print(f"assets ready in {directory}")
        return 0
    if args.command == "validate":
        return _validate(pipeline, args.runs)
    if args.command == "graph":
        from .job.chains import compile_chains, to_dot

        selection = discover_runs(pipeline.trace_path, *args.runs, pattern=pipeline.run_pattern)
        chains = compile_chains(pipeline, selection, seed=pipeline.seed or 0, token="graph")
        sys.stdout.write(to_dot(chains, name=pipeline.name))
        return 0
    return _run(pipeline, args)


def _model(args: argparse.Namespace) -> ExecutionModel:
    if args.sync:
        return SyncModel()
    if args.mpi:
        from .execution.mpi import MPIModel

        return MPIModel(tuned=not args.dask_worker_defaults, security=False if args.insecure else None)
    if args.scheduler_file is not None:
        return SchedulerModel(scheduler_file=args.scheduler_file, security=False if args.insecure else None)
    if args.address:
        return SchedulerModel(address=args.address)
    return LocalModel(args.procs or 1, tuned=not args.dask_worker_defaults)


def _run(pipeline: object, args: argparse.Namespace) -> int:
    from .errors import PipelineInterrupted
    from .job.options import AdaptiveLimits, JobOptions, ResumePolicy
    from .launch import run_job
    from .pipeline import Pipeline

    assert isinstance(pipeline, Pipeline)
    options = JobOptions(
        window=args.window,
        fuse=args.fuse,
        fail_fast=args.fail_fast,
        force=args.force,
        force_phases=tuple(args.force_phase),
        resume=ResumePolicy(
            verify="stat" if args.trust_mtime else "checksum",
            run_identity="content" if args.hash_run_files else "stat",
        ),
        limits=AdaptiveLimits(max_generations=args.max_generations, max_children=args.max_children),
        performance_report=args.performance_report,
        display=not args.no_display,
        runs_to_skip=frozenset(parse_run_list(args.skip)),
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


def _validate(pipeline: object, runs: tuple[int, int] | None) -> int:
    from .pipeline import Pipeline

    assert isinstance(pipeline, Pipeline)
    pipeline.validate()
    print(f"pipeline {pipeline.name}: schemas fit")
    for phase, active in zip(pipeline.phases, pipeline.active):
        print(f"  {phase.name:<20} {'compute' if active else 'cached (inactive)'}")
    if runs is not None:
        selection = discover_runs(pipeline.trace_path, *runs, pattern=pipeline.run_pattern)
        print(f"runs {runs[0]}-{runs[1]}: {len(selection.found)} found, {len(selection.missing)} missing")
        if selection.missing:
            print(f"  missing: {', '.join(map(str, selection.missing))}")
    return 0


def fill_batch_script(text: str, *, analysis_dir: Path, environment: Path | None = None) -> str:
    """A batch script template with its analysis directory and Python environment filled in.

    ``@ANALYSIS_DIR@`` becomes ``analysis_dir`` (the job's ``--chdir``) and ``@GYRE_ENV@`` the
    environment whose ``bin/`` holds ``gyre`` and ``mpiexec``: by default the one running now.
    """
    env = Path(sys.prefix) if environment is None else environment
    return text.replace("@ANALYSIS_DIR@", str(analysis_dir)).replace("@GYRE_ENV@", str(env))


def _init(directory: Path) -> int:
    if directory.exists() and any(directory.iterdir()):
        print(f"gyre: error: {directory} exists and is not empty", file=sys.stderr)
        return 2
    shutil.copytree(TEMPLATE, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for script in sorted(directory.glob("*.sbatch")):
        script.write_text(fill_batch_script(script.read_text(), analysis_dir=directory.resolve()))
    print(f"new gyre workspace in {directory}: edit pipeline.py and config.toml, then")
    print(f"  gyre run {directory / 'pipeline.py'}:pipeline --runs 1-10 --procs 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
