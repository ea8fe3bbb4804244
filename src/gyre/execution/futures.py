"""An engine on a distributed ``Client``: shared by the local, mpi and scheduler models."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable, Iterator
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
    """

    def __init__(self, client: Client) -> None:
        from distributed import as_completed

        self.client = client
        self.dashboard_link = _dashboard_link(client)
        # finished tasks are taken in batches, their results fetched with one gather per
        # batch: one driver wake-up and one round trip per batch, not per task
        self._pending = as_completed()
        self._graph: dict[str, tuple[Any, ...]] = {}
        self._priority: dict[str, int] = {}
        self._futures: dict[str, Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, priority: int = 0) -> Any:
        self._graph[key] = (fn, *args)
        self._priority[key] = priority
        return _Ref(key)

    def flush(self) -> None:
        """Send what was submitted since the last flush to the scheduler, as one graph."""
        assert self.client is not None
        if not self._graph:
            return
        graph, self._graph = self._graph, {}
        priority, self._priority = self._priority, {}
        for key, task in list(graph.items()):
            # a dependency sent in an earlier flush is passed as its future
            if any(isinstance(a, _Ref) and a not in graph for a in task[1:]):
                del graph[key]
                args = [self._futures[a] if isinstance(a, _Ref) and a in self._futures else a for a in task[1:]]
                future = self.client.submit(task[0], *args, key=key, priority=priority[key], pure=False)
                self._track(key, future)
        if graph:
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
                self.flush()  # what the driver submitted while handling this batch

    def _collect(self, batch: list[Any]) -> Iterator[Completed]:
        finished = [f for f in batch if f.status == "finished"]
        values = dict(zip((f.key for f in finished), self._gather(finished)))
        for future in batch:
            self._futures.pop(future.key, None)
            value = values.get(future.key, _NOT_FINISHED)
            if isinstance(value, _Lost):
                yield Completed(future.key, error=value.error)
            elif value is not _NOT_FINISHED:
                yield Completed(future.key, value=value)
            else:
                try:
                    error = future.exception()
                except (asyncio.CancelledError, concurrent.futures.CancelledError):
                    yield Completed(future.key, cancelled=True)
                    continue
                if error is None:  # its result was lost with a dead worker and has been recomputed
                    yield Completed(future.key, value=future.result())
                    continue
                yield Completed(future.key, error=_in_gyre_terms(error))

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


def _expression(graph: dict[str, tuple[Any, ...]]) -> Any:
    """The graph as dask's low-level graph expression, named by a random token.

    Naming it ourselves, as ``Client.submit`` does, spares dask a deterministic hash of
    every task (phases included) on each flush; the keys are unique per job anyway.
    """
    try:
        from dask._expr import LLGExpr
    except ImportError:  # pragma: no cover - an older or newer dask: let it hash the graph
        return graph
    return LLGExpr(graph, _determ_token=uuid.uuid4().hex)


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
