"""Worker settings for compute-bound phases: a quiet event loop and one set of cores per worker.

A dask worker runs each task in a thread while its event loop thread wakes up for timers
(the admin tick every 20 ms, the statistical profiler every 10 ms, the memory and system
monitors) and messages. Each wake-up takes the GIL from the task, and a GIL hand-off between
threads on two different cores is expensive on many virtual machines: measured on a 2-core
VM, the detector example's phases ran 1.52× slower in a default worker with the other core
idle than in a plain process (``benchmarks/makespan.py`` explains the measurement). Two
things, together, bring that to 0.97–1.05×:

- a quieter worker (``QUIET_WORKER_CONFIG``): no statistical profiler (the dashboard's
  profile page stays empty) and one-second admin ticks and monitors instead of 20-500 ms;
- binding each worker process to its own cores (``CorePinning``), so the event loop and the
  task thread share a core and a hand-off is a plain context switch. gyre does this only
  for clusters it starts itself on one machine, and only when the workers' threads fit the
  cores this process may use; under ``mpiexec`` the launcher binds ranks
  (``mpiexec -bind-to core``).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from distributed import Worker

__all__ = ["QUIET_WORKER_CONFIG", "CorePinning", "cores_for_worker"]

log = logging.getLogger(__name__)

#: dask settings for workers that run long, compute-bound tasks (see the module docstring)
QUIET_WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
}


def cores_for_worker(index: int, threads: int, n_workers: int, allowed: list[int]) -> list[int] | None:
    """The cores worker ``index`` of ``n_workers`` (each with ``threads`` threads) is bound to.

    Worker ``i`` gets ``allowed[i * threads : (i + 1) * threads]``; ``None`` (no binding) when
    the workers' threads do not fit the allowed cores, where binding would only crowd them.
    """
    if index < 0 or threads < 1 or n_workers * threads > len(allowed) or index >= n_workers:
        return None
    return allowed[index * threads : (index + 1) * threads]


def _bind_process(cores: list[int]) -> None:
    """Bind every thread this process has now (later ones inherit it) to ``cores``."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, FileNotFoundError):  # a thread that ended meanwhile
            continue


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
        _bind_process(cores)
        log.debug("worker %s bound to cores %s", worker.name, cores)
