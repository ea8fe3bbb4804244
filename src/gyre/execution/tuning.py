"""Worker settings for compute-bound phases: a quiet event loop and one set of cores per worker.

A dask worker runs each task in a thread while its event loop thread wakes up for timers
(the admin tick every 20 ms, the statistical profiler every 10 ms, the memory and system
monitors) and messages. Each wake-up takes the GIL from the task, and a GIL hand-off between
threads on two different cores is expensive on many virtual machines: measured on a 2-core
VM, the detector example's phases ran 1.52× slower in a default worker with the other core
idle than in a plain process (``benchmarks/makespan.py`` shows the effect on a whole
pipeline). Two things, together, bring that to 0.97–1.05×:

- a quieter worker (``QUIET_WORKER_CONFIG``): no statistical profiler (the dashboard's
  profile page stays empty) and one-second admin ticks and monitors instead of 20-500 ms;
- binding each worker process to its own cores (``gyre.execution.pinning.CorePinning``),
  so the event loop and the task thread share a core and a hand-off is a plain context
  switch. gyre does this only
  for clusters it starts itself on one machine, and only when the workers' threads fit the
  cores this process may use; under ``mpiexec`` the launcher binds ranks
  (``mpiexec -bind-to core``).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["QUIET_WORKER_CONFIG", "bind_process", "cores_for_worker"]

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


def bind_process(cores: list[int]) -> None:
    """Bind every thread this process has now (later ones inherit it) to ``cores``."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, FileNotFoundError):  # a thread that ended meanwhile
            continue
