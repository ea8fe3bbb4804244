"""A ``LocalCluster`` of single-threaded worker processes on this machine: the default."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ClusterError
from .base import Engine, ExecutionModel
from .futures import FuturesEngine
from .tuning import QUIET_WORKER_CONFIG

__all__ = ["LocalModel"]

log = logging.getLogger(__name__)


class LocalModel(ExecutionModel):
    """Start a ``LocalCluster`` with ``n_procs`` worker processes for the pipeline, close it after.

    The dashboard binds to 127.0.0.1 on a free port unless ``dashboard_address`` says
    otherwise (``None`` disables it). ``worker_saturation`` (dask's
    ``distributed.scheduler.worker-saturation``) defaults to 1.0: a worker holds only the
    tasks it is running, so when a task kills its worker (out of memory), no innocent task
    queued there is blamed for the death (``None``: dask's own setting).

    With ``tuned`` (the default) the workers run with ``QUIET_WORKER_CONFIG`` and each is
    bound to its own cores (``CorePinning``): compute-bound phases then run as fast as in a
    plain process, where a default worker slowed them by up to 1.5× (see ``tuning``).
    ``tuned=False`` keeps dask's settings, e.g. to use the dashboard's profile page.
    """

    name = "local"
    one_job_per_process = True

    def __init__(
        self,
        n_procs: int = 1,
        *,
        threads_per_worker: int = 1,
        memory_limit: str | float | None = "auto",
        dashboard_address: str | None = "127.0.0.1:0",
        local_directory: str | Path | None = None,
        worker_saturation: float | None = 1.0,
        tuned: bool = True,
    ) -> None:
        if n_procs < 1:
            raise ClusterError(f"n_procs must be at least 1, got {n_procs}")
        self.n_procs = n_procs
        self.threads_per_worker = threads_per_worker
        self.memory_limit = memory_limit
        self.dashboard_address = dashboard_address
        self.local_directory = local_directory
        self.worker_saturation = worker_saturation
        self.tuned = tuned

    def describe(self) -> str:
        return f"local ({self.n_procs} worker processes × {self.threads_per_worker} thread)"

    @contextmanager
    def open(self) -> Iterator[Engine]:
        import dask
        from distributed import Client, LocalCluster

        dashboard = self.dashboard_address
        if dashboard is not None and importlib.util.find_spec("bokeh") is None:
            log.info("bokeh is not installed: the dask dashboard is off (pip install 'gyre[dashboard]')")
            dashboard = None
        options: dict[str, Any] = {}
        if dashboard is None:
            # no dashboard, and no HTTP server on the default port 8787 either
            options["scheduler_kwargs"] = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
        if self.local_directory is not None:
            options["local_directory"] = str(self.local_directory)
        try:
            with dask.config.set(QUIET_WORKER_CONFIG if self.tuned else {}):  # nannies copy it
                cluster = LocalCluster(
                    n_workers=self.n_procs,
                    threads_per_worker=self.threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=dashboard,
                    memory_limit=self.memory_limit,
                    **options,
                )
        except Exception as exc:
            raise ClusterError(f"could not start a local cluster of {self.n_procs} workers: {exc}") from exc
        if self.worker_saturation is not None and cluster.scheduler is not None:  # read per decision
            cluster.scheduler.WORKER_SATURATION = self.worker_saturation
        try:
            with Client(cluster) as client:
                client.wait_for_workers(self.n_procs, timeout=120)
                from .interrupts import IgnoreInterrupts

                client.register_plugin(IgnoreInterrupts())
                if self.tuned:
                    from .pinning import CorePinning

                    client.register_plugin(CorePinning(self.n_procs, self.threads_per_worker))
                yield FuturesEngine(client)
        finally:
            cluster.close()
