"""Opens an MPIModel under mpiexec and runs a few tasks; the mode (argv[1]) picks what goes wrong.

ok           every worker runs tasks; the driver prints one JSON line with who ran what
raise        the driver raises while tasks are in flight
slow-worker  one worker starts too late for a short worker_timeout
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from gyre.execution.mpi import MPIModel


def where(i: int) -> tuple[int, str, int]:
    from distributed import get_worker

    time.sleep(0.05)
    return i, str(get_worker().name), os.getpid()


def profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def main(mode: str) -> None:
    options: dict[str, object] = {}
    if mode == "slow-worker":
        from mpi4py import MPI

        options = {"worker_timeout": 3.0, "shutdown_timeout": 3.0}
        if MPI.COMM_WORLD.Get_rank() == 3:
            options["worker_class"] = "slow_worker.SlowWorker"
    model = MPIModel(**options)  # type: ignore[arg-type]
    with model.open() as engine:
        for i in range(20):
            engine.submit(where, i, key=f"where-{i}")
        if mode == "raise":
            raise RuntimeError("the driver failed on purpose")
        results = [done.value for done in engine.completed()]
        ran_on = sorted({name for _, name, _ in results})
        report = {
            "n_results": len(results),
            "workers": ran_on,
            "n_threads": engine.n_threads,
            "cluster_workers": sorted(str(w["name"]) for w in engine.client.scheduler_info()["workers"].values()),
            "describe": model.describe(),
            "dashboard": engine.dashboard_link,
            "driver_pid": os.getpid(),
            "worker_pids": sorted({pid for _, _, pid in results}),
            "host": socket.gethostname(),
            "workers_profiling": sorted(engine.client.run(profiling).values()),
        }
    print("RESULT " + json.dumps(report), flush=True)
    from mpi4py import MPI

    print(f"AFTER rank={MPI.COMM_WORLD.Get_rank()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
