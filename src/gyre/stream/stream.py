"""Stream: items put in while earlier ones are processing, results taken out as they are ready."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..execution import ExecutionModel, resolve_model
from ..execution.launcher import refuse_launched_copies
from .drivers import ClientDriver, InlineDriver
from .errors import StageFailed, StreamClosed, StreamEmpty, StreamError, StreamFull
from .flow import Flow, StreamResult
from .stage import Stage

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["Stream"]

log = logging.getLogger(__name__)


class Stream:
    """A running flow of items through the stages linked from ``first``.

    Feed it with ``put(item)`` (from any thread, while earlier items are processing, or every
    item before reading any), end the input with ``put(None)``, and take results with
    ``get()`` or by iterating: iteration stops
    once everything put before the stop signal has been delivered. ``close()`` (or leaving a
    ``with`` block) stops the work and releases the workers.

    Parameters
    ----------
    first
        The stage every item enters; the stages it links to, and theirs, make the stream.
    cluster, n_procs, client
        Where the stages run, as for ``start_pipeline``: ``"sync"`` runs them in the thread
        that calls ``get()``; by default a local cluster of ``n_procs`` worker processes.
    backlog
        The most input items in the stages at once, counting results not yet taken: beyond
        it, items put wait in the stream's queue until results are taken (``put(wait=True)``
        waits instead). ``None``: no bound (each stage still runs at most ``workers`` items).
    fail_fast
        ``False``: an item that fails in a stage is delivered as a result with its ``error``.
        ``True``: the first failure stops the stream and ``get()``/``put()`` raise
        :class:`StageFailed`.
    """

    def __init__(
        self,
        first: Stage,
        *,
        cluster: ExecutionModel | str | None = None,
        n_procs: int = 1,
        client: Client | None = None,
        backlog: int | None = 64,
        fail_fast: bool = False,
    ) -> None:
        self._flow = Flow(first, backlog=backlog, fail_fast=fail_fast)
        self._lock = threading.Condition()
        self._closed = False
        model = resolve_model(cluster, n_procs=n_procs, client=client)
        refuse_launched_copies(model, entry="Stream")
        with ExitStack() as stack:  # release the engine if the driver cannot start
            engine = stack.enter_context(model.open())
            self._driver: InlineDriver | ClientDriver
            if engine.client is None:
                self._driver = InlineDriver()
            else:
                self._driver = ClientDriver(engine.client, self._flow, self._lock)
            stack.callback(self._driver.close)
            self._resources = stack.pop_all()
        log.info("stream of %d stages started on %s", len(self._flow.lanes), model.describe())

    @property
    def in_progress(self) -> int:
        """How many input items are in the stages or have results not yet taken (at most ``backlog``)."""
        with self._lock:
            return self._flow.in_progress

    @property
    def queued(self) -> int:
        """How many items were put and wait for room in the backlog to enter the first stage."""
        with self._lock:
            return self._flow.queued

    def put(self, item: Any, *, wait: bool = False, timeout: float | None = None) -> None:
        """Add ``item`` to the stream; ``None`` is the stop signal (no more items).

        Never waits by default: while the backlog is full the item is queued in this process
        (not sent to the workers) and enters the first stage as results are taken, so
        putting every item, then ``None``, then reading the results works in one thread.
        ``wait=True`` (or a ``timeout``) waits for room instead, which bounds a producer
        thread's memory: at most ``timeout`` seconds, then :class:`StreamFull`. Raises
        :class:`StreamClosed` after the stop signal or ``close()``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._raise_if_broken()
            if self._flow.ended:
                raise StreamClosed("the stop signal was given: this stream accepts no more items")
            if item is None:
                self._flow.ended = True
                self._lock.notify_all()
                return
            while (wait or timeout is not None) and not self._flow.has_room:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StreamFull(
                        f"the backlog of {self._flow.backlog} items stayed full for {timeout:g} s: "
                        "take results (get() or iteration, e.g. in another thread) while putting, "
                        "or put without waiting, or use Stream.map(items), or a larger backlog=..."
                    )
                self._lock.wait(remaining)
                self._raise_if_broken()
            self._flow.accept(item)
            self._lock.notify_all()
        self._driver.wake()

    def get(self, *, timeout: float | None = None) -> StreamResult:
        """The next result, waiting at most ``timeout`` seconds (then :class:`StreamEmpty`).

        Raises :class:`StreamClosed` once every result has been taken after the stop signal,
        and :class:`StageFailed` on a ``fail_fast`` stream whose stage raised.
        """
        result = self._next(timeout)
        if result is None:
            raise StreamClosed("every result has been taken: the stream ended with its stop signal")
        return result

    def __iter__(self) -> Iterator[StreamResult]:
        """Results as they are ready, until all items put before the stop signal are delivered."""
        while (result := self._next(None)) is not None:
            yield result

    def map(self, items: Iterable[Any]) -> Iterator[StreamResult]:
        """Put every item of ``items``, then the stop signal, and yield the results, in one thread.

        Results are taken whenever the backlog is full, so an endless ``items`` runs in
        bounded memory.
        """
        for item in items:
            while not self._has_room():
                yield self.get()
            self.put(item)
        self.put(None)
        yield from self

    def close(self) -> None:
        """Stop: running work is cancelled, results not yet taken are dropped, workers released."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        self._resources.close()
        log.info("stream closed after %d items", self._flow.accepted)

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _has_room(self) -> bool:
        with self._lock:
            self._raise_if_broken()
            return self._flow.has_room

    def _next(self, timeout: float | None) -> StreamResult | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                self._raise_if_broken()
                queued = self._flow.queued
                result = self._flow.take()
                if result is not None:
                    self._lock.notify_all()  # room for put()
                    if self._flow.queued < queued:  # a queued item entered the first stage
                        self._driver.wake()
                    return result
                if self._flow.finished:
                    return None
                if isinstance(self._driver, InlineDriver) and self._run_one(self._driver):
                    continue
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StreamEmpty(f"no result arrived within {timeout:g} s")
                self._lock.wait(remaining)

    def _run_one(self, driver: InlineDriver) -> bool:
        """Run one waiting task in this thread (the lock is released meanwhile)."""
        tasks = self._flow.ready(limit=1)
        if not tasks:
            return False
        task = tasks[0]
        self._lock.release()
        try:
            outputs, error = driver.run(self._flow.lanes[task.lane].stage, task)
        finally:
            self._lock.acquire()
        self._flow.finish(task, outputs, error)
        self._lock.notify_all()
        return True

    def _raise_if_broken(self) -> None:
        if self._closed:
            raise StreamClosed("the stream is closed")
        failure = self._flow.failure
        if failure is not None:
            raise StageFailed(
                f"stage {failure.stage!r} failed on item {failure.index}: {failure.error!r}",
                stage=failure.stage,
                index=failure.index,
            ) from failure.error
        if self._driver.error is not None:
            raise StreamError(f"the stream stopped: {self._driver.error!r}") from self._driver.error
