"""An engine on a distributed ``Client``: shared by the local, mpi and scheduler models."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import WorkerLostError
from .base import Completed, Engine

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["FuturesEngine"]


_NOT_FINISHED = object()


class _Ref(str):
    """A handle to a submitted task: its key, which dask replaces by the task's value."""


class FuturesEngine(Engine):
    """Submits tasks as distributed futures and yields them as they complete.

    Tasks submitted together (a window refill: whole run chains) go to the scheduler as
    one graph, with one update message and per-key priorities, instead of one message
    per task; finished tasks are taken in batches, with one gather per batch.

    A task that depends on earlier ones is sent once their results are here, with those
    results as its arguments. The driver fetches every result anyway, and a task's result
    is small (an outcome: its artifacts are on disk). Dask recomputes a lost result that a
    pending task still needs; with the value sent along, no pending task needs one that
    lives only in a worker's memory, so a worker that dies costs only the task it was
    running, never its run's finished upstream phases.
    """

    def __init__(self, client: Client) -> None:
        from distributed import as_completed

        self.client = client
        self.dashboard_link = _dashboard_link(client)
        # finished tasks are taken in batches, their results fetched with one gather per
        # batch: one driver wake-up and one round trip per batch, not per task
        self._pending = as_completed()
        self._graph: dict[str, tuple[Callable[..., Any], list[Any]]] = {}  # ready to send
        self._priority: dict[str, int] = {}
        self._futures: dict[str, Any] = {}
        self._waiting: dict[str, _Waiting] = {}  # submitted, some dependency not finished yet
        self._dependents: dict[str, list[str]] = {}  # key → the waiting tasks that need it

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, priority: int = 0) -> Any:
        missing: set[str] = {arg for arg in args if isinstance(arg, _Ref)}
        for dependency in missing:
            if dependency not in self._futures and dependency not in self._graph and dependency not in self._waiting:
                raise ValueError(f"task {key!r} depends on {dependency!r}, which is not submitted or already taken")
            self._dependents.setdefault(dependency, []).append(key)
        self._priority[key] = priority
        if missing:
            self._waiting[key] = _Waiting(fn, list(args), missing)
        else:
            self._graph[key] = (fn, list(args))
        return _Ref(key)

    def flush(self) -> None:
        """Send the tasks whose dependencies are all finished to the scheduler, as one graph."""
        assert self.client is not None
        if not self._graph:
            return
        graph, self._graph = self._graph, {}
        priority = {key: self._priority.pop(key) for key in graph}
        futures = self.client.get(
            _expression(graph), list(graph), sync=False, priority=partial(_priority_of, priority), fifo_timeout=0
        )
        for key, future in zip(graph, futures):
            self._track(key, future)

    def completed(self) -> Iterator[Completed]:
        while True:
            self.flush()
            if self._pending.is_empty():
                return
            for batch in self._pending.batches():
                yield from self._collect(batch)
                self.flush()  # what the driver submitted, and what became ready, meanwhile

    def _collect(self, batch: list[Any]) -> Iterator[Completed]:
        finished = [f for f in batch if f.status == "finished"]
        values = dict(zip((f.key for f in finished), self._gather(finished)))
        for future in batch:
            self._futures.pop(future.key, None)
            completed = self._completed(future, values.get(future.key, _NOT_FINISHED))
            yield completed
            yield from self._release(completed)

    def _completed(self, future: Any, value: Any) -> Completed:
        if isinstance(value, _Lost):
            return Completed(future.key, error=value.error)
        if value is not _NOT_FINISHED:
            return Completed(future.key, value=value)
        try:
            error = future.exception()
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            return Completed(future.key, cancelled=True)
        if error is None:  # its result was lost with a dead worker and has been recomputed
            return Completed(future.key, value=future.result())
        return Completed(future.key, error=_in_gyre_terms(error))

    def _release(self, completed: Completed) -> Iterator[Completed]:
        """Pass a finished task's value to the tasks waiting on it; an error ends them too."""
        for key in self._dependents.pop(completed.key, []):
            waiting = self._waiting.get(key)
            if waiting is None:
                continue
            if completed.error is not None or completed.cancelled:  # as dask does: a dependency's end is the task's
                del self._waiting[key]
                self._priority.pop(key, None)
                failed = Completed(key, error=completed.error, cancelled=completed.cancelled)
                yield failed
                yield from self._release(failed)
                continue
            waiting.args = [_resolve(arg, completed) for arg in waiting.args]
            waiting.missing.discard(completed.key)
            if not waiting.missing:
                del self._waiting[key]
                self._graph[key] = (waiting.fn, waiting.args)

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self.client is not None
        self.client.run(fn, *args)

    @property
    def n_threads(self) -> int:
        assert self.client is not None
        return max(1, sum(self.client.nthreads().values()))

    def cancel(self) -> None:
        assert self.client is not None
        self._graph.clear()
        self._priority.clear()
        self._waiting.clear()
        self._dependents.clear()
        futures = list(self._pending.futures)
        self._pending.clear()
        self._futures.clear()
        if futures:
            self.client.cancel(futures)

    def _gather(self, futures: list[Any]) -> list[Any]:
        assert self.client is not None
        if not futures:
            return []
        try:
            return list(self.client.gather(futures))
        except Exception:  # noqa: BLE001 - one lost result must not cost the others theirs
            return [_value_or_error(future) for future in futures]

    def _track(self, key: str, future: Any) -> None:
        self._futures[key] = future
        self._pending.add(future)


def _expression(graph: dict[str, tuple[Callable[..., Any], list[Any]]]) -> Any:
    """The graph as dask's low-level graph expression, named by a random token.

    Every argument is a value (dependencies are resolved before a task is sent), passed as
    is: wrapped in dask's task objects, no argument is taken for a key or a nested task.
    Naming the graph ourselves, as ``Client.submit`` does, spares dask a deterministic hash
    of every task (phases included) on each flush; the keys are unique per job anyway.
    Every task is marked a data producer, so that the scheduler queues it (with a finite
    ``worker-saturation``) and hands it to the first free worker thread in priority order;
    otherwise a later phase, sent alone once its upstream finished, would be assigned at
    once to a busy worker and wait there behind a long task while another worker idles.
    """
    try:
        from dask._expr import LLGExpr
        from dask._task_spec import Task
    except ImportError:  # pragma: no cover - an older dask: legacy tuples, hashed by dask
        return {key: (fn, *args) for key, (fn, args) in graph.items()}
    tasks = {key: Task(key, fn, *args, _data_producer=True) for key, (fn, args) in graph.items()}
    return LLGExpr(tasks, _determ_token=uuid.uuid4().hex)


def _resolve(arg: Any, completed: Completed) -> Any:
    """``completed``'s value if ``arg`` is its handle, else ``arg``."""
    return completed.value if isinstance(arg, _Ref) and arg == completed.key else arg


def _priority_of(priorities: dict[str, int], key: Any) -> int:
    """The user priority of ``key`` (evaluated on the scheduler for each task of a graph)."""
    return priorities.get(key, 0)


def _value_or_error(future: Any) -> Any:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - becomes this task's error
        return _Lost(exc)


def _in_gyre_terms(error: BaseException) -> BaseException:
    """distributed's ``KilledWorker`` as a ``WorkerLostError``; any other error as it is."""
    from distributed import KilledWorker

    if isinstance(error, KilledWorker):
        lost = WorkerLostError(str(error))
        lost.__cause__ = error
        return lost
    return error


@dataclass
class _Waiting:
    """A submitted task some of whose dependencies have not finished: their keys, in ``missing``."""

    fn: Callable[..., Any]
    args: list[Any]
    missing: set[str]


class _Lost:
    """A result that could not be fetched (its worker died after finishing the task)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _dashboard_link(client: Client) -> str | None:
    try:
        info = client.scheduler_info()
    except Exception:  # noqa: BLE001 - the link is a convenience, never fatal
        return None
    if "dashboard" not in info.get("services", {}):
        return None
    return str(client.dashboard_link)
