"""Execution models: where a pipeline's tasks run, behind one small base class.

``sync`` (this process, for debugging), ``local`` (a LocalCluster, the default),
``mpi`` (dask-mpi under mpiexec), ``slurm`` (workers as Slurm jobs through dask-jobqueue)
and ``scheduler`` (a scheduler someone else started).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Completed, Engine, ExecutionModel
from .local import LocalModel
from .scheduler import ClientModel, SchedulerModel
from .sync import SyncModel
from .tuning import QUIET_WORKER_CONFIG

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "QUIET_WORKER_CONFIG",
    "ClientModel",
    "Completed",
    "Engine",
    "ExecutionModel",
    "LocalModel",
    "SchedulerModel",
    "SyncModel",
    "resolve_model",
]


def resolve_model(
    cluster: ExecutionModel | str | None = None,
    *,
    n_procs: int = 1,
    client: Client | None = None,
) -> ExecutionModel:
    """The execution model meant by ``start_pipeline``'s arguments.

    ``cluster`` may be a model, ``"sync"``, ``"local"``, ``"mpi"``, ``"slurm"`` (``n_procs``
    worker jobs), a scheduler address (``"tcp://host:8786"``) or a path to a scheduler file;
    ``client`` uses an existing client; neither means a local cluster of ``n_procs`` workers.
    """
    if client is not None:
        if cluster is not None:
            raise ConfigError("give either client=... or cluster=..., not both")
        return ClientModel(client)
    if cluster is None or cluster == "local":
        return LocalModel(n_procs)
    if isinstance(cluster, ExecutionModel):
        return cluster
    if cluster == "sync":
        return SyncModel()
    if cluster == "mpi":
        from .mpi import MPIModel

        return MPIModel()
    if cluster == "slurm":
        from .slurm import SlurmModel

        return SlurmModel(jobs=n_procs)
    if "://" in cluster:
        return SchedulerModel(address=cluster)
    if cluster.endswith(".json"):
        return SchedulerModel(scheduler_file=cluster)
    raise ConfigError(
        f"unknown execution model {cluster!r}: use 'sync', 'local', 'mpi', 'slurm', a scheduler address "
        "like 'tcp://host:8786' or a scheduler file ending in .json"
    )
