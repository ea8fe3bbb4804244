"""The worker plugin that gives each worker process its log files in the workspace; runs on the workers.

Registered once per job on the job's client (``launch.watched``): each worker process, those
that join later (restarted by their nanny, new jobqueue workers) included, sends gyre's
records to ``<workspace>/log/worker-<host>-<pid>.log`` and distributed's to
``dask-worker-<host>-<pid>.log``, for as long as the job runs. Kept apart from ``job.logs``
because it subclasses distributed's ``WorkerPlugin``: importing gyre must not import distributed.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

from ..execution.logs import route_dask_logs
from .logs import FORMAT

if TYPE_CHECKING:
    from distributed import Client, Worker

__all__ = ["WorkerLog", "worker_logs"]

log = logging.getLogger(__name__)


class WorkerLog(WorkerPlugin):
    """Sends a worker process's gyre and distributed records to its files under ``<workspace>/log``.

    ``name`` is per job, so two jobs on one client each write their own files; the handlers
    are removed when the job unregisters the plugin.
    """

    idempotent = True

    def __init__(self, workspace: Path, *, token: str) -> None:
        self.workspace = Path(workspace)
        self.name = f"gyre-worker-log-{token}"
        self._handler: logging.Handler | None = None
        self._undo: Callable[[], None] | None = None

    def setup(self, worker: Worker) -> None:
        target = self.workspace / "log" / f"worker-{socket.gethostname()}-{os.getpid()}.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(target)
        handler.set_name(self.name)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger = logging.getLogger("gyre")
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        self._handler = handler
        # distributed's records of this process, unless the process that started it routed them
        self._undo = route_dask_logs(target.with_name(f"dask-{target.name}"), tag=f"worker {target.stem[7:]}")

    def teardown(self, worker: Worker) -> None:
        if self._handler is not None:
            logging.getLogger("gyre").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        if self._undo is not None:
            self._undo()
            self._undo = None


@contextmanager
def worker_logs(client: Client | None, workspace: Path, *, token: str) -> Iterator[None]:
    """:class:`WorkerLog` on every worker of ``client`` while the block runs (nothing without a client)."""
    if client is None:
        yield
        return
    plugin = WorkerLog(workspace, token=token)
    client.register_plugin(plugin)
    try:
        yield
    finally:
        try:
            client.unregister_worker_plugin(plugin.name)
        except Exception as exc:  # noqa: BLE001 - the cluster may be closing; never hide the job's result
            log.debug("could not remove the worker log plugin: %s", exc)
