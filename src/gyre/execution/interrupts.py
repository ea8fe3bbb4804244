"""The worker plugin that leaves Ctrl-C to the driver: worker processes of a local cluster ignore SIGINT.

A Ctrl-C in a terminal signals the whole foreground process group: the driver and the
worker processes its local cluster spawned. The driver stops the job cleanly (see
:mod:`gyre.job.interrupt`) and needs its workers while it cancels and shuts the cluster
down; a worker that took the SIGINT itself died with a ``KeyboardInterrupt`` traceback, and
its nanny waited seconds before killing it. Kept apart from ``local`` because it subclasses
distributed's ``WorkerPlugin``: importing gyre must not import distributed.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from distributed import Worker

__all__ = ["IgnoreInterrupts"]


class IgnoreInterrupts(WorkerPlugin):
    """Makes each worker process ignore SIGINT (registered by ``LocalModel``; restarted workers too).

    SIGTERM is left alone: the nanny ends its worker with it when the cluster closes.
    """

    name = "gyre-ignore-interrupts"
    idempotent = True

    def setup(self, worker: Worker) -> None:
        if threading.current_thread() is threading.main_thread():  # a worker process's event loop
            signal.signal(signal.SIGINT, signal.SIG_IGN)
