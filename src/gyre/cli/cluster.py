"""``gyre cluster``: under mpiexec, a dask cluster of the ranks that others join through a scheduler file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add ``cluster`` to the subcommands."""
    cluster = sub.add_parser(
        "cluster", help="under mpiexec: rank 0 a scheduler that writes --scheduler-file, the other ranks workers"
    )
    cluster.set_defaults(handler=_cluster)
    cluster.add_argument("--scheduler-file", type=Path, required=True, help="where the scheduler writes its address")
    cluster.add_argument("--shutdown", action="store_true", help="shut down the cluster behind the file and leave")
    cluster.add_argument("--log-dir", type=Path, default=None, help="distributed's records, one file per rank")
    cluster.add_argument("--insecure", action="store_true", help="no TLS credentials (default: per-job TLS)")
    cluster.add_argument("--interface", default=None, help="network interface, e.g. ib0 (one host: the loopback)")
    cluster.add_argument("--nthreads", type=int, default=1, help="threads (tasks at once) per worker")
    cluster.add_argument("--memory-limit", default="auto", help="memory per worker, e.g. 4GB")
    cluster.add_argument("--dashboard-address", default="127.0.0.1:0", help="where rank 0 serves the dashboard")


def _cluster(args: argparse.Namespace) -> int:
    from ..execution.file_cluster import FileClusterConfig, serve_file_cluster, shut_down_file_cluster

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
