"""The scheduler plugin that remembers which worker left with which tasks: runs inside the scheduler.

When a worker leaves while it runs tasks (its batch job was cancelled, reached its
walltime, its node failed), the scheduler gives those tasks to other workers, and
nothing in the results says it happened. :class:`WorkerLosses` keeps, for each such
departure, the worker's name and the keys it was running, so that the job's report can
say which tasks were retried where. Kept apart because it subclasses distributed's
``SchedulerPlugin``: importing gyre must not import distributed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin

if TYPE_CHECKING:
    from distributed import Scheduler

__all__ = ["WorkerLoss", "WorkerLosses", "task_label"]


@dataclass(frozen=True)
class WorkerLoss:
    """A worker that left the scheduler while it ran tasks: its name, address and those tasks' keys."""

    name: str
    address: str
    keys: tuple[str, ...]
    #: why the scheduler removed it (distributed's stimulus id: a closed comm, a retirement, ...)
    reason: str


class WorkerLosses(SchedulerPlugin):
    """Records every worker that leaves with tasks in hand (see the module docstring)."""

    name = "gyre-worker-losses"

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.losses: list[WorkerLoss] = []

    def add_worker(self, scheduler: Scheduler, worker: str) -> None:
        state = scheduler.workers.get(worker)
        self.names[worker] = str(state.name) if state is not None else worker

    @property
    def joined(self) -> set[str]:
        """The names of every worker that ever joined."""
        return set(self.names.values())

    def log_event(self, topic: str, msg: Any) -> None:
        if topic != "all" or not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        keys = tuple(sorted(str(key) for key in msg.get("processing-tasks", ())))
        if not keys:
            return
        address = str(msg.get("worker", "?"))
        self.losses.append(WorkerLoss(self.names.get(address, address), address, keys, str(msg.get("stimulus_id", ""))))


def task_label(key: str) -> str:
    """A task key (``<phase>-<token>-<run>``, fused phases joined by ``+``) as ``phase on run N``."""
    parts = key.rsplit("-", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return key
    return f"{parts[0].replace('+', ', ')} on run {parts[2]}"
