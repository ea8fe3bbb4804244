"""The bookkeeping of a stream, without threads or processes.

Which items wait at which stage, how many each stage is running, the reordering of ordered
stages, the copies made by forks, the results waiting to be taken and the backlog. The
drivers run the tasks it hands out and report back; every call is made under the
stream's lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .stage import Stage

__all__ = ["Flow", "StreamResult", "Task"]


@dataclass(frozen=True)
class StreamResult:
    """One result of a stream: a value from a leaf stage, or an item that failed in a stage.

    ``stage`` is the leaf that produced ``value`` (or the stage that failed), ``index`` the
    position of the input item it came from (0 for the first ``put``), ``error`` the
    exception of a failed item (``value`` is then ``None``).
    """

    value: Any
    stage: str
    index: int
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """``True`` unless the item failed."""
        return self.error is None


@dataclass(frozen=True)
class Task:
    """One item to run through one stage."""

    lane: int  # position of the stage in Flow.lanes
    seq: int  # arrival number of the item at that stage
    index: int  # the input item it descends from
    value: Any


@dataclass
class _Lane:
    """A stage's state in one stream."""

    stage: Stage
    depth: int
    children: list[int] = field(default_factory=list)
    waiting: deque[Task] = field(default_factory=deque)
    running: int = 0
    arrived: int = 0
    next_out: int = 0  # ordered stages: the arrival number released next
    held: dict[int, tuple[Task, list[Any], BaseException | None]] = field(default_factory=dict)


class Flow:
    """Routes items between the stages of a tree rooted at ``first``; bounded by ``backlog`` items.

    An input item counts towards the backlog from the moment it enters the first stage
    until all it led to has been taken (or dropped); each copy of it anywhere in the tree
    holds one token. Items accepted while the backlog is full wait in the input queue, in
    this process, and enter one by one as earlier items are taken. ``backlog=None``: no bound.
    """

    def __init__(self, first: Stage, *, backlog: int | None, fail_fast: bool) -> None:
        if backlog is not None and backlog < 1:
            raise ConfigError(f"backlog must be at least 1 item (or None: unbounded), got {backlog}")
        stages = list(first.walk())
        names = [stage.name for stage in stages]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(
                f"stage names must be unique within a stream, found {duplicates} more than once: "
                "give the stages name=..."
            )
        position = {id(stage): n for n, stage in enumerate(stages)}
        self.lanes: list[_Lane] = []
        for stage in stages:
            parent = self.lanes[position[id(stage.parent)]] if stage is not first else None
            self.lanes.append(_Lane(stage, depth=0 if parent is None else parent.depth + 1))
            if parent is not None:
                parent.children.append(len(self.lanes) - 1)
        self.backlog = backlog
        self.fail_fast = fail_fast
        self.results: deque[StreamResult] = deque()
        self.failure: StreamResult | None = None  # the first failure of a fail-fast stream
        self.accepted = 0
        self.ended = False
        self._tokens: dict[int, int] = {}
        self._queued: deque[tuple[int, Any]] = deque()  # accepted, waiting for room in the backlog

    @property
    def has_room(self) -> bool:
        """Whether another item would enter the stages at once, within the backlog."""
        return not self._queued and self._below_backlog()

    @property
    def finished(self) -> bool:
        """The stop signal was given and everything before it has been taken."""
        return self.ended and not self._tokens and not self._queued

    @property
    def in_progress(self) -> int:
        """How many input items are in the stages (or their results untaken): at most ``backlog``."""
        return len(self._tokens)

    @property
    def queued(self) -> int:
        """How many accepted items wait for room in the backlog before entering the first stage."""
        return len(self._queued)

    def accept(self, value: Any) -> int:
        """Take a new input item: into the first stage if the backlog has room, else into the queue."""
        index = self.accepted
        self.accepted += 1
        self._queued.append((index, value))
        self._admit()
        return index

    def _below_backlog(self) -> bool:
        return self.backlog is None or len(self._tokens) < self.backlog

    def _admit(self) -> None:
        """Move queued items into the first stage while the backlog has room."""
        while self._queued and self._below_backlog():
            index, value = self._queued.popleft()
            self._tokens[index] = 0
            self._send(0, index, value)

    def ready(self, limit: int | None = None) -> list[Task]:
        """Tasks to start now (deepest stages first), each stage staying within its workers."""
        tasks: list[Task] = []
        if self.failure is not None:
            return tasks
        for lane in sorted(self.lanes, key=lambda lane: -lane.depth):
            while lane.waiting and lane.running < lane.stage.workers:
                if limit is not None and len(tasks) >= limit:
                    return tasks
                tasks.append(lane.waiting.popleft())
                lane.running += 1
        return tasks

    def finish(self, task: Task, outputs: list[Any], error: BaseException | None) -> None:
        """Record a task's outcome and pass its results on (ordered stages: in arrival order)."""
        lane = self.lanes[task.lane]
        lane.running -= 1
        if not lane.stage.ordered:
            self._release(task, outputs, error)
            return
        lane.held[task.seq] = (task, outputs, error)
        while lane.next_out in lane.held:
            self._release(*lane.held.pop(lane.next_out))
            lane.next_out += 1

    def take(self) -> StreamResult | None:
        """The next result waiting to be taken, if any."""
        if not self.results:
            return None
        result = self.results.popleft()
        self._drop(result.index)
        return result

    def _send(self, lane_no: int, index: int, value: Any) -> None:
        lane = self.lanes[lane_no]
        lane.waiting.append(Task(lane_no, lane.arrived, index, value))
        lane.arrived += 1
        self._tokens[index] += 1

    def _release(self, task: Task, outputs: list[Any], error: BaseException | None) -> None:
        lane = self.lanes[task.lane]
        if error is not None:
            result = StreamResult(None, lane.stage.name, task.index, error)
            self._deliver(result)
            if self.fail_fast and self.failure is None:
                self.failure = result
        for value in outputs:
            for child in lane.children:
                self._send(child, task.index, value)
            if not lane.children:
                self._deliver(StreamResult(value, lane.stage.name, task.index))
        self._drop(task.index)

    def _deliver(self, result: StreamResult) -> None:
        self.results.append(result)
        self._tokens[result.index] += 1

    def _drop(self, index: int) -> None:
        self._tokens[index] -= 1
        if not self._tokens[index]:
            del self._tokens[index]
            self._admit()
