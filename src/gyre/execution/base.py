"""The two small classes every execution model is built from.

An :class:`ExecutionModel` says *where* tasks run (in this process, a local cluster, an MPI
allocation, a scheduler someone else started). Opening it yields an :class:`Engine`, the one
interface the driver uses: submit a task that may depend on earlier ones, and iterate the
tasks as they complete, including those submitted while iterating.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["Completed", "Engine", "ExecutionModel"]


@dataclass(frozen=True)
class Completed:
    """A task that finished: its value, or the error that ended it (a dead worker, a cancel)."""

    key: str
    value: Any = None
    #: what ended it, in gyre's terms: a ``WorkerLostError`` for a task whose workers kept
    #: dying, the task's own exception otherwise
    error: BaseException | None = None
    #: the task was cancelled (``fail_fast``, an interruption) before it finished
    cancelled: bool = False


class Engine(ABC):
    """A running place to execute tasks, open for the length of one pipeline."""

    #: the distributed client behind the engine, ``None`` when tasks run in this process
    client: Client | None = None
    #: where the dask dashboard is served, if it is
    dashboard_link: str | None = None
    #: ``True`` when exceptions of phases should propagate to the caller (debugging)
    raise_errors: bool = False

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any, key: str, priority: int = 0) -> Any:
        """Schedule ``fn(*args)``; handles returned by earlier submits may appear in ``args``."""

    @abstractmethod
    def completed(self) -> Iterator[Completed]:
        """Yield tasks as they complete until none is left, including tasks submitted meanwhile."""

    @abstractmethod
    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in every process that executes tasks (best effort)."""

    @property
    def n_threads(self) -> int:
        """How many tasks can run at once."""
        return 1

    def cancel(self) -> None:  # noqa: B027 - optional for engines
        """Stop pending tasks (interruption); finished work is kept."""


class ExecutionModel(ABC):
    """Where a pipeline's tasks run; ``open()`` starts or connects, and cleans up on exit."""

    name: str = "abstract"
    #: ``True`` when every process of the job runs the caller's code (MPI ranks): only the
    #: driver's comes out of :meth:`open`, so the workspace is prepared after opening, by it
    splits_processes: bool = False
    #: ``True`` when the job runs in this process or in a cluster that ``open()`` starts for it
    #: alone: under a launcher of N ranks every rank would then run its own copy of the job
    one_job_per_process: bool = False
    #: the host of each process of the job, when the model knows them (rank order for MPI)
    hosts: Sequence[str] = ()
    #: the host the scheduler (and its dashboard) runs on, when the model knows it
    scheduler_host: str | None = None
    #: where the processes the model starts write distributed's log records (one file each);
    #: ``start_pipeline`` sets it to ``<workspace>/log``, ``None`` leaves distributed's logging alone
    log_directory: Path | None = None

    @abstractmethod
    def open(self) -> AbstractContextManager[Engine]:
        """Start (or connect to) the place tasks run; closing it releases what it started."""

    def describe(self) -> str:
        """One line for logs and the report."""
        return self.name

    def driver_logs(self) -> AbstractContextManager[Any]:
        """Route distributed's records of the calling (driver) process while the job runs.

        To ``log_directory/dask-driver.log``, warnings also to stderr one line each (see
        :mod:`gyre.execution.logs`); nothing without a ``log_directory``. Models whose
        processes need other names (MPI ranks) or that do not use distributed override it.
        """
        if self.log_directory is None:
            return nullcontext()
        from .logs import dask_logs

        return dask_logs(Path(self.log_directory) / "dask-driver.log")

    def dashboard_tunnel_hint(self) -> str | None:
        """How to reach the dashboard from the user's own machine, if it needs a tunnel."""
        return None

    def notes(self) -> list[str]:
        """What the model has to add to the job's report (workers it lost, jobs it replaced); nothing by default."""
        return []
