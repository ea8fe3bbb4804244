"""The driver loop: submit run chains through an engine, a bounded window at a time, and collect outcomes."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import WorkerLostError
from ..execution.base import Completed, Engine
from ..result import Status, TaskOutcome
from .chains import RunChain
from .costs import CostModel
from .deadline import NOT_STARTED, Deadline
from .fusion import FusionPolicy, execute_chain, fused_key
from .merge import failed_run, merge_parts
from .options import RUNS_PER_THREAD, JobOptions
from .splitting import part_key
from .worker import TaskSpec, execute_phase

__all__ = ["Driver", "Listener"]

log = logging.getLogger(__name__)

_WHOLE_CHAIN = -1  # where a fused task stands: every phase of its run


class Listener(Protocol):
    """Something that watches outcomes as they arrive (the display, the dashboard page, ...)."""

    def task_done(self, outcome: TaskOutcome) -> None:
        """Called in the driver for every (phase, run) as soon as its outcome is known.

        A listener may also define ``part_done(outcome)``: called for every part of a split
        run (``outcome.part`` set) as it finishes; ``task_done`` then comes with the merge.
        """


@dataclass
class _ChainState:
    chain: RunChain
    outcomes: dict[int, TaskOutcome] = field(default_factory=dict)
    #: part task key → its spec, for the parts of a split run in flight
    part_specs: dict[str, TaskSpec] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(o.status == Status.FAILED for o in self.outcomes.values())

    @property
    def complete(self) -> bool:
        return len(self.outcomes) == len(self.chain.tasks)


class Driver:
    """Runs chains on an engine and returns one outcome per (phase, run).

    At most ``options.window_for(threads)`` runs are in flight at once; the next chain, in
    the given order (largest run first), is submitted as soon as one completes, so the
    scheduler's and the driver's memory stay flat as the run count grows. With
    ``options.fail_fast`` the first failure cancels everything not yet finished. Outcomes
    given in ``cached`` (task key → outcome, e.g. from the resume plan) are recorded without
    submitting. ``options.fuse`` decides whether each run's chain is one task
    (:mod:`gyre.job.fusion`), with the same outcomes. With a ``deadline``, each computed
    (phase, run) carries the latest time it may start (the deadline's stop less its cost
    predicted by ``costs``), and a run whose first computed phase could not end in time even
    if it started now is not submitted: its (phase, run)s are ``skipped`` (``NOT_STARTED``).
    """

    def __init__(
        self,
        engine: Engine,
        chains: Sequence[RunChain],
        options: JobOptions | None = None,
        *,
        listeners: Iterable[Listener] = (),
        cached: Mapping[str, TaskOutcome] | None = None,
        costs: CostModel | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        options = options or JobOptions()
        self.costs = costs
        self.deadline = deadline
        self.engine = engine
        # the cluster's size costs a round trip to the scheduler: asked once, and only if needed
        n_threads = functools.cache(lambda: engine.n_threads)
        self.window = options.window_for(n_threads)
        self.fail_fast = options.fail_fast
        self.listeners = list(listeners)
        self.fusion = FusionPolicy.for_cluster(options.fuse, n_threads)
        #: how many runs went as one fused task
        self.fused_runs = 0
        self._queue = deque(chains)
        #: task key → its run, the phase index it stands for and its part number (0: not a part)
        self._where: dict[str, tuple[_ChainState, int, int]] = {}
        self._in_flight = 0
        self.max_in_flight = 0
        self.outcomes: list[TaskOutcome] = []
        #: the outcomes of the parts of split runs (the merged (phase, run)s are in ``outcomes``)
        self.part_outcomes: list[TaskOutcome] = []
        self.cancelled = False
        self.cached = dict(cached or {})

    def run(self) -> list[TaskOutcome]:
        """Submit, collect and return every outcome (in completion order)."""
        self._fill()
        for completed in self.engine.completed():
            entry = self._where.pop(completed.key, None)
            if entry is None:  # cancelled after the engine collected it: already recorded as skipped
                continue
            state, where, number = entry
            if number:
                part = self._part_outcome(completed, state)
                self._record_part(part)
                if self.fail_fast and part.status == Status.FAILED and not self.cancelled:
                    if where not in state.outcomes:  # the run fails now, not when its merge would have said so
                        state.outcomes[where] = failed_run(state.chain.tasks[where], part)
                        self._record(state.outcomes[where])
                    self._cancel(f"fail_fast: run {part.run} failed in phase {part.phase}")
                continue
            failure: TaskOutcome | None = None
            for index in _indices(state, where):
                if where == _WHOLE_CHAIN:
                    outcome = self._outcome(_part(completed, index), state, index)
                else:
                    outcome = self._outcome(completed, state, index)
                    if not outcome.parts:  # a merge's time says nothing about a phase's
                        self.fusion.observe(outcome)
                state.outcomes[index] = outcome
                self._record(outcome)
                if failure is None and outcome.status == Status.FAILED:
                    failure = outcome
            if state.complete:
                self._in_flight -= 1
                if self._queue and not self.cancelled:
                    self._fill()
            if self.fail_fast and failure is not None and not self.cancelled:
                self._cancel(f"fail_fast: run {failure.run} failed in phase {failure.phase}")
        return self.outcomes

    def add_chains(self, chains: Sequence[RunChain]) -> None:
        """Feed more chains while running (adaptive children), ahead of the chains still queued.

        They are submitted at once if the window has room, otherwise as runs complete.
        Call it from a listener, i.e. while :meth:`run` is collecting outcomes.
        """
        if self.cancelled:
            return
        self._queue.extendleft(reversed(chains))
        while self._queue and self._in_flight < self._limit():
            self._submit_next()

    def cancel(self, reason: str) -> None:
        """Stop submitting and cancel what is in flight; unfinished (phase, run)s are marked skipped."""
        self._cancel(reason)

    def _fill(self) -> None:
        while self._queue and self._in_flight < self._limit():
            self._submit_next()

    def _limit(self) -> int:
        """Runs allowed in flight now: the window, or while fusion is undecided about a worker
        thread's worth (``window / RUNS_PER_THREAD``, at least the decision's sample), so that
        the runs after the decision are the many."""
        if not self.fusion.deciding:
            return self.window
        return min(self.window, max(self.fusion.sample, self.window // RUNS_PER_THREAD))

    def _submit_next(self) -> None:
        chain = self._queue.popleft()
        if self.deadline is not None and not chain.tasks[0].lineage:
            chain = self._with_start_by(chain, self.deadline.stop_at)
            if not self._starts_in_time(chain):
                return
        state = _ChainState(chain)
        upstream: Any = chain.payload
        if chain.parts:
            self._submit_split(chain, state)
        elif self.fusion.fusing and not any(key in self.cached for key in chain.keys):
            key = fused_key([spec.phase.name for spec in chain.tasks], chain.tasks[0].token, chain.run.run)
            self.engine.submit(execute_chain, list(chain.tasks), upstream, key=key, priority=chain.priority)
            self._where[key] = (state, _WHOLE_CHAIN, 0)
            self.fused_runs += 1
        else:
            for index, (spec, key) in enumerate(zip(chain.tasks, chain.keys)):
                if key in self.cached:  # resolved from the manifest: nothing to submit
                    upstream = state.outcomes[index] = self.cached[key]
                    self._record(upstream)
                    continue
                upstream = self.engine.submit(execute_phase, spec, upstream, key=key, priority=chain.priority)
                self._where[key] = (state, index, 0)
        if state.complete:
            return
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _with_start_by(self, chain: RunChain, stop: float) -> RunChain:
        """``chain`` whose computed (phase, run)s start only if they are predicted to end by ``stop``."""
        tasks = []
        for spec in chain.tasks:
            if spec.compute:
                seconds = self.costs.predict(spec.phase.name, spec.run).seconds if self.costs is not None else None
                spec = dataclasses.replace(spec, start_by=stop - (seconds or 0.0))
            tasks.append(spec)
        return dataclasses.replace(chain, tasks=tuple(tasks))

    def _starts_in_time(self, chain: RunChain) -> bool:
        """Whether the first computed (phase, run) of ``chain`` could still end in time; if not, all are
        recorded (cached ones as cached, the rest skipped) and nothing is submitted."""
        first = next((s for s, k in zip(chain.tasks, chain.keys) if k not in self.cached and s.compute), None)
        if first is None or first.start_by is None or first.start_by >= time.time():
            return True
        log.info("run %d not started: predicted to end after the deadline", chain.run.run)
        for spec, key in zip(chain.tasks, chain.keys):
            self._record(self.cached[key] if key in self.cached else spec.skipped(NOT_STARTED))
        return False

    def _submit_split(self, chain: RunChain, state: _ChainState) -> None:
        """A split run's tasks: its split phases part by part (part k of a phase after part k of
        the one before), each merged once its parts are done; its other phases whole."""
        upstream: Any = chain.payload
        by_part: list[Any] | None = None  # the previous phase's parts, if it was split
        count = len(chain.parts)
        for index, (spec, key) in enumerate(zip(chain.tasks, chain.keys)):
            if key in self.cached:
                upstream = state.outcomes[index] = self.cached[key]
                self._record(upstream)
                by_part = None
                continue
            if index not in chain.split:
                upstream = self.engine.submit(execute_phase, spec, upstream, key=key, priority=chain.priority)
                self._where[key] = (state, index, 0)
                by_part = None
                continue
            handles = []
            for number, events in enumerate(chain.parts, start=1):
                name = part_key(key, number, count)
                if name in self.cached:  # finished by an interrupted job
                    handles.append(self.cached[name])
                    self._record_part(self.cached[name])
                    continue
                part = dataclasses.replace(spec, events=events, part=(number, count))
                source = by_part[number - 1] if by_part is not None else upstream
                handles.append(self.engine.submit(execute_phase, part, source, key=name, priority=chain.priority))
                self._where[name] = (state, index, number)
                state.part_specs[name] = part
            # the merge waits for the previous phase's outcome too: a failed merge upstream skips this phase
            upstream = self.engine.submit(merge_parts, spec, upstream, *handles, key=key, priority=chain.priority)
            self._where[key] = (state, index, 0)
            by_part = handles

    def _part_outcome(self, completed: Completed, state: _ChainState) -> TaskOutcome:
        spec = state.part_specs.pop(completed.key)
        if completed.error is None and isinstance(completed.value, TaskOutcome):
            return completed.value
        if completed.cancelled:
            return spec.skipped("cancelled")
        error = completed.error
        message = f"{type(error).__name__}: {error}" if error is not None else f"unexpected value {completed.value!r}"
        if isinstance(error, WorkerLostError):
            message = f"the worker running phase {spec.phase.name!r} on {spec.label} died repeatedly: {error}"
        log.error("phase %s on %s ended without an outcome: %s", spec.phase.name, spec.label, message)
        return TaskOutcome(
            phase=spec.phase.name,
            run=spec.run,
            status=Status.FAILED,
            error=f"phase {spec.phase.name!r} on {spec.label}: {message}",
            error_type=type(error).__name__ if error is not None else None,
            lineage=spec.lineage,
            part=spec.part,
            events=spec.events,
        )

    def _record_part(self, outcome: TaskOutcome) -> None:
        self.part_outcomes.append(outcome)
        for listener in self.listeners:
            part_done = getattr(listener, "part_done", None)
            if part_done is not None:
                part_done(outcome)

    def _outcome(self, completed: Completed, state: _ChainState, index: int) -> TaskOutcome:
        spec = state.chain.tasks[index]
        if completed.error is None and isinstance(completed.value, TaskOutcome):
            return completed.value
        if state.failed or any(o.status == Status.SKIPPED for o in state.outcomes.values()):
            return spec.skipped("an earlier phase of this run failed")
        if completed.cancelled:
            return spec.skipped("cancelled")
        error = completed.error
        message = f"{type(error).__name__}: {error}" if error is not None else f"unexpected value {completed.value!r}"
        if isinstance(error, WorkerLostError):
            message = (
                f"the worker running phase {spec.phase.name!r} on run {spec.run} died repeatedly "
                f"(out of memory or a crash in compiled code?): {error}"
            )
        log.error("phase %s on run %d ended without an outcome: %s", spec.phase.name, spec.run, message)
        return TaskOutcome(
            phase=spec.phase.name,
            run=spec.run,
            status=Status.FAILED,
            error=message,
            error_type=type(error).__name__ if error is not None else None,
            lineage=spec.lineage,
        )

    def _record(self, outcome: TaskOutcome) -> None:
        self.outcomes.append(outcome)
        for listener in self.listeners:
            listener.task_done(outcome)

    def _cancel(self, reason: str) -> None:
        self.cancelled = True
        log.warning("cancelling the remaining work: %s", reason)
        self.engine.cancel()
        for state, index in ((s, i) for s, where, _ in list(self._where.values()) for i in _indices(s, where)):
            if index not in state.outcomes:
                outcome = state.chain.tasks[index].skipped(reason)
                state.outcomes[index] = outcome
                self._record(outcome)
        self._where.clear()
        while self._queue:
            chain = self._queue.popleft()
            for spec in chain.tasks:
                self._record(spec.skipped(reason))


def _indices(state: _ChainState, where: int) -> range:
    """The phase indices a task stands for: one, or all of its run's for a fused task."""
    return range(len(state.chain.tasks)) if where == _WHOLE_CHAIN else range(where, where + 1)


def _part(completed: Completed, index: int) -> Completed:
    """What a fused task gives for one of its phases."""
    value = completed.value
    if completed.error is None and isinstance(value, tuple) and index < len(value):
        return Completed(completed.key, value=value[index])
    return Completed(completed.key, value=None if completed.error is None else value, error=completed.error)
