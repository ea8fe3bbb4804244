"""A dask cluster of MPI ranks that others reach through a scheduler file: what ``gyre cluster`` runs.

``mpiexec -n N gyre cluster --scheduler-file scheduler-<job>.json`` makes rank 0 the scheduler
and every other rank a worker; a driver outside MPI (``gyre run --scheduler-file``, a
notebook, further ``dask worker``s on other hosts) joins through the file. Unlike plain
``dask-mpi``:

- the cluster speaks TLS with credentials made for it (:mod:`gyre.execution.security`):
  rank 0 makes them, writes them next to the scheduler file (``scheduler-<job>.pem``,
  mode 0600) before the scheduler file appears, and sends them to the other ranks over MPI;
  ``insecure=True`` (``--insecure``) turns this off;
- every rank's distributed records go to ``<log_directory>/dask-cluster-rank<N>-<role>.log``,
  only warnings reach the job log, one line each (:mod:`gyre.execution.logs`);
- workers use the quiet settings of gyre's own clusters;
- a SIGINT/SIGTERM to the job leaves the ranks serving until the driver has finished its
  clean-up and shuts the cluster down (or ``signal_grace`` seconds pass);
- rank 0 removes the scheduler file and the credentials when the scheduler closes;
  ``gyre cluster --shutdown`` (:func:`shut_down_file_cluster`) closes it from the batch script.

When every rank is on one host the cluster binds to the loopback, as gyre's other clusters do.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ClusterError
from .logs import route_dask_logs
from .security import JobCredentials, credentials_path, make_credentials, write_credentials
from .tuning import QUIET_WORKER_CONFIG

__all__ = ["FileClusterConfig", "serve_file_cluster", "shut_down_file_cluster"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FileClusterConfig:
    """The options of ``gyre cluster``: where the file goes and how the ranks serve."""

    scheduler_file: Path
    log_directory: Path | None = None
    insecure: bool = False
    interface: str | None = None
    nthreads: int = 1
    memory_limit: str = "auto"
    dashboard_address: str | None = "127.0.0.1:0"
    signal_grace: float = 30.0


def serve_file_cluster(config: FileClusterConfig) -> None:
    """Be rank 0's scheduler or a worker until the cluster is shut down (call it on every rank)."""
    import dask

    from .mpi import leave_on_signals_while_blocked, loopback_interface, serve_through_signals

    with leave_on_signals_while_blocked():  # MPI_Init waits for every rank, in C
        from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    role = "scheduler" if rank == 0 else "worker"
    if config.log_directory is not None:
        route_dask_logs(Path(config.log_directory) / f"dask-cluster-rank{rank}-{role}.log", tag=f"rank {rank} ({role})")
    hosts = comm.allgather(socket.gethostname())
    interface = config.interface if config.interface is not None or len(set(hosts)) > 1 else loopback_interface()
    credentials: JobCredentials | None = None
    if not config.insecure:
        credentials = comm.bcast(make_credentials() if rank == 0 else None, root=0)
    settings: dict[str, Any] = {} if credentials is None else credentials.as_dask_config()
    if role == "worker":
        settings.update(QUIET_WORKER_CONFIG)
    with dask.config.set(settings), serve_through_signals(f"rank {rank} ({role})", config.signal_grace):
        if rank == 0:
            asyncio.run(_scheduler(comm, config, interface, credentials))
        else:
            asyncio.run(_worker(comm, config, interface))


def shut_down_file_cluster(scheduler_file: Path, *, timeout: float = 20.0) -> bool:
    """Shut down the cluster behind ``scheduler_file`` (with its credentials); ``False`` if none answered."""
    from distributed import Client

    from .scheduler import SchedulerModel

    model = SchedulerModel(scheduler_file=scheduler_file, connect_timeout=timeout)
    try:
        address, security = model.scheduler_address(), model.connection_security()
        with Client(address, timeout=timeout, security=security, set_as_default=False) as client:
            client.shutdown()
    except (OSError, ClusterError) as exc:
        log.info("no cluster to shut down behind %s: %s", scheduler_file, exc)
        return False
    return True


async def _scheduler(
    comm: Any, config: FileClusterConfig, interface: str | None, credentials: JobCredentials | None
) -> None:
    from distributed import Scheduler

    dashboard = config.dashboard_address is not None and importlib.util.find_spec("bokeh") is not None
    scheduler_file = Path(config.scheduler_file).absolute()
    secrets = credentials_path(scheduler_file)
    if credentials is not None:
        write_credentials(credentials, secrets)  # before the scheduler file: whoever sees it finds them
    try:
        async with Scheduler(
            interface=interface,
            protocol="tcp" if credentials is None else "tls",
            dashboard_address=config.dashboard_address or ":0",
            dashboard=dashboard,
            scheduler_file=str(scheduler_file),
        ) as scheduler:
            comm.bcast(scheduler.address, root=0)
            log.info("scheduler at %s, file %s", scheduler.address, scheduler_file)
            await scheduler.finished()
    finally:
        for path in (scheduler_file, secrets):
            with suppress(FileNotFoundError):
                path.unlink()


async def _worker(comm: Any, config: FileClusterConfig, interface: str | None) -> None:
    from distributed import Worker

    address = comm.bcast(None, root=0)
    async with Worker(
        address,
        interface=interface,
        nthreads=config.nthreads,
        memory_limit=config.memory_limit,
        death_timeout=max(60.0, config.signal_grace),  # a scheduler gone for good ends the worker too
    ) as worker:
        await worker.finished()
