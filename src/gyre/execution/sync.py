"""In-process execution with dask's synchronous scheduler: for debugging."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from .base import Completed, Engine, ExecutionModel

__all__ = ["SyncModel"]


class _Ref(str):
    """A task handle in the synchronous engine: the key, which dask substitutes by its value."""


class SyncEngine(Engine):
    """Runs tasks in the calling thread, in submission order, through ``dask.local.get_sync``."""

    def __init__(self, *, raise_errors: bool) -> None:
        self.raise_errors = raise_errors
        self._graph: dict[str, Any] = {}
        self._order: list[str] = []
        self._done: dict[str, Any] = {}
        self._refs: dict[str, int] = {}

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, priority: int = 0) -> Any:
        self._graph[key] = (fn, *args)
        self._order.append(key)
        for arg in args:
            if isinstance(arg, _Ref):
                self._refs[arg] = self._refs.get(arg, 0) + 1
        return _Ref(key)

    def completed(self) -> Iterator[Completed]:
        from dask.local import get_sync

        while self._order:
            key = self._order.pop(0)
            task = self._graph.pop(key)
            deps = {arg: self._done[arg] for arg in task[1:] if isinstance(arg, _Ref)}
            value = get_sync({**deps, key: task}, key)
            if self._refs.get(key):
                self._done[key] = value
            for dep in deps:  # a value is kept only while a submitted task still needs it
                self._refs[dep] -= 1
                if not self._refs[dep]:
                    del self._refs[dep], self._done[dep]
            yield Completed(key, value=value)

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def cancel(self) -> None:
        self._graph.clear()
        self._order.clear()


class SyncModel(ExecutionModel):
    """Everything in the calling process, one task at a time.

    With ``raise_errors=True`` (the default) the first exception of a phase propagates out
    of ``start_pipeline`` with its original traceback, straight into ``pdb`` or an IDE.
    With ``raise_errors=False`` failures are isolated per run as on a cluster.
    """

    name = "sync"
    one_job_per_process = True

    def driver_logs(self) -> AbstractContextManager[Any]:
        """Nothing to route: tasks run here, without distributed."""
        return nullcontext()

    def __init__(self, *, raise_errors: bool = True) -> None:
        self.raise_errors = raise_errors

    @contextmanager
    def open(self) -> Iterator[Engine]:
        yield SyncEngine(raise_errors=self.raise_errors)
