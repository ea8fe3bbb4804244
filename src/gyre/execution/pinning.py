"""The worker plugin that binds each worker process of a local cluster to its own cores.

Kept apart from ``tuning`` because it subclasses distributed's ``WorkerPlugin``: importing
gyre must not import distributed.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

from .tuning import bind_process, cores_for_worker

if TYPE_CHECKING:
    from distributed import Worker

__all__ = ["CorePinning"]

log = logging.getLogger(__name__)


class CorePinning(WorkerPlugin):
    """Binds each worker process of a local cluster to its own cores, by worker name 0..n-1.

    Registered by ``LocalModel`` on the clusters it starts; a worker the nanny restarts is
    bound again. Does nothing where the platform cannot bind threads (not Linux) or when the
    workers do not fit the cores (see ``cores_for_worker``).
    """

    name = "gyre-core-pinning"
    idempotent = True

    def __init__(self, n_workers: int, threads_per_worker: int) -> None:
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker

    def setup(self, worker: Worker) -> None:
        if not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"):
            return
        try:
            index = int(worker.name)
        except (TypeError, ValueError):
            log.debug("worker %s has no numeric name: not binding it to cores", worker.name)
            return
        allowed = sorted(os.sched_getaffinity(0))
        cores = cores_for_worker(index, self.threads_per_worker, self.n_workers, allowed)
        if cores is None:
            log.debug(
                "%d workers × %d threads do not fit cores %s: not binding",
                self.n_workers,
                self.threads_per_worker,
                allowed,
            )
            return
        bind_process(cores)
        log.debug("worker %s bound to cores %s", worker.name, cores)
