"""The two ways a stream's tasks are run: in the caller's thread, or as futures on a distributed client.

Both take tasks from the stream's :class:`~gyre.stream.flow.Flow` and report each outcome
back to it under the stream's lock.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from typing import TYPE_CHECKING, Any

from .flow import Flow, Task
from .stage import Stage, apply_stage

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ClientDriver", "InlineDriver"]

log = logging.getLogger(__name__)

_STOP = object()


class InlineDriver:
    """Runs one task at a time in the thread that waits for a result (the sync model)."""

    inline = True
    error: BaseException | None = None

    def __init__(self) -> None:
        self._states: dict[str, Any] = {}

    def run(self, stage: Stage, task: Task) -> tuple[list[Any], BaseException | None]:
        """Apply ``stage`` to the task's item; a failure is returned, not raised."""
        try:
            if stage.init is None:
                return apply_stage(stage.fn, task.value), None
            if stage.name not in self._states:
                self._states[stage.name] = stage.init()
            return apply_stage(stage.fn, task.value, self._states[stage.name]), None
        except Exception as exc:  # noqa: BLE001 - one item in one stage, reported in its result
            log.debug("stage %s failed on item %d: %r", stage.name, task.index, exc)
            return [], exc

    def wake(self) -> None:
        """Nothing to do: the caller's thread runs the tasks."""

    def close(self) -> None:
        """Drop the stages' per-worker states."""
        self._states.clear()


class ClientDriver:
    """A background thread that submits tasks as distributed futures and collects their results.

    Each stage keeps at most ``workers`` futures in flight; deeper stages get a higher
    priority, so items already in the stream finish before new ones start. Results are
    fetched in the client's event loop as tasks finish, so the thread never waits on one.
    """

    inline = False

    def __init__(self, client: Client, flow: Flow, lock: threading.Condition) -> None:
        self.error: BaseException | None = None  # set if the driver itself broke
        self._client: Any = client  # distributed is only partly typed
        self._flow = flow
        self._lock = lock
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._running: dict[Any, tuple[Any, Task]] = {}
        self._token = uuid.uuid4().hex[:12]  # makes task keys unique; they start with the stage name
        self._states: str | None = None
        if any(lane.stage.init is not None for lane in flow.lanes):
            from .worker import StageStates

            self._states = f"gyre-stream-{self._token}"
            client.register_plugin(StageStates(self._states), name=self._states)
        self._thread = threading.Thread(target=self._loop, name="gyre-stream-driver", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New items were accepted: submit what can start."""
        self._events.put(None)

    def close(self) -> None:
        """Stop the thread, cancel the futures still running and drop the per-worker states."""
        self._events.put(_STOP)
        self._thread.join()
        futures = [future for future, _ in self._running.values()]
        self._running.clear()
        try:
            if futures:
                self._client.cancel(futures)
            if self._states is not None:
                self._client.unregister_worker_plugin(self._states)
        except Exception as exc:  # noqa: BLE001 - cleanup on a cluster that may be gone already
            log.warning("could not clean up the stream's tasks on the cluster: %r", exc)

    def _loop(self) -> None:
        try:
            while True:
                self._submit_ready()
                events = [self._events.get()]
                while not self._events.empty():
                    events.append(self._events.get())
                if any(event is _STOP for event in events):
                    return
                self._collect([event for event in events if event is not None])
        except Exception as exc:  # noqa: BLE001 - the driver broke (scheduler gone?): get/put raise it
            log.error("the stream's driver stopped: %r", exc)
            with self._lock:
                self.error = exc
                self._lock.notify_all()

    def _submit_ready(self) -> None:
        from .worker import run_on_worker

        while True:
            with self._lock:
                tasks = self._flow.ready()
            if not tasks:
                return
            for task in tasks:
                lane = self._flow.lanes[task.lane]
                stage = lane.stage
                try:
                    future = self._client.submit(
                        run_on_worker,
                        stage.fn,
                        task.value,
                        stage.init,
                        self._states,
                        stage.name,
                        key=f"{stage.name}-{self._token}-{task.seq}",
                        priority=lane.depth,
                        pure=False,
                    )
                except Exception as exc:  # noqa: BLE001 - this one item cannot be sent (does not pickle?)
                    self._finish([(task, [], exc)])
                    continue
                self._running[future.key] = (future, task)
                self._client.loop.add_callback(self._watch, future)

    async def _watch(self, future: Any) -> None:
        """In the client's event loop: wait for one future and fetch its result for the driver."""
        try:
            value = await self._client.gather(future, asynchronous=True)
        except BaseException as exc:  # noqa: BLE001 - the task's own error, or its cancellation
            self._events.put((future, [], exc))
        else:
            self._events.put((future, value, None))

    def _collect(self, events: list[tuple[Any, list[Any], BaseException | None]]) -> None:
        outcomes = [
            (self._running.pop(future.key)[1], outputs, error)
            for future, outputs, error in events
            if future.key in self._running
        ]
        self._finish(outcomes)

    def _finish(self, outcomes: list[tuple[Task, list[Any], BaseException | None]]) -> None:
        with self._lock:
            for task, outputs, error in outcomes:
                self._flow.finish(task, outputs, error)
            failed = self._flow.failure is not None
            self._lock.notify_all()
        if failed and self._running:  # fail fast: nothing more will be delivered
            self._client.cancel([future for future, _ in self._running.values()])
