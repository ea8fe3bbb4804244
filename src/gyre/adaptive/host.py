"""Adaptive child graphs, on the driver's side: limits, lineage, and feeding children to the running driver.

A phase's ``ctx.spawn(...)`` (or the pipeline's adaptive function) makes a
:class:`~gyre.context.ChildRequest`. :class:`AdaptiveHost` watches outcomes as the driver
collects them; for each request it checks the limits, builds the child pipeline (its own
workspace ``<parent workspace>/children/<child name>/``), compiles its chains with the
child's lineage and feeds them to the same driver, so children run on the same scheduler
while the rest of the job goes on.

Names are ``<parent name>.<phase>-r<run>-<k>`` (``adaptive-r<run>-<k>`` for the adaptive
function, or the request's own name), and every random stream depends on (root seed,
lineage, phase, run): the same seed gives the same tree and the same artifacts whatever
the number of workers and the order of completion — as long as ``max_children`` is not
reached (which requests come first when the cap is hit depends on the order of completion).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..context import ChildRequest, check_child_name
from ..errors import ConfigError, GyreError
from ..job.chains import compile_chains
from ..job.options import AdaptiveLimits
from ..job.seeding import run_generator, stable_int
from ..job.shared import clear_shared
from ..job.splitting import with_run_events
from ..phase import Phase
from ..pipeline import Pipeline
from ..result import TaskOutcome
from ..runs import RunSelection, find_runs
from .lineage import ChildSummary, tree_order

if TYPE_CHECKING:
    from ..execution.base import Engine
    from ..job.submit import Driver

__all__ = ["AdaptiveFunction", "AdaptiveHost", "LineageNode", "split_outcomes"]

log = logging.getLogger(__name__)

#: children of generation g get this much more scheduling priority per generation, so a
#: started lineage is finished before queued top-level runs (depth first, bounded memory)
PRIORITY_STEP = 1_000_000_000


@dataclass(frozen=True)
class LineageNode:
    """One pipeline of the lineage tree as an adaptive function sees it: the top level or a child."""

    name: str
    lineage: tuple[str, ...]
    pipeline: Pipeline
    parent: str | None = None
    reason: str | None = None
    #: the job's root seed (what :meth:`rng` draws from)
    seed: int = 0

    def rng(self, run: int) -> np.random.Generator:
        """A generator for the strategy's own draws about ``run`` of this node, reproducible across jobs.

        It depends only on the job's root seed, this node's lineage and ``run`` (like a phase's
        ``ctx.rng``, under a name no phase can have), so "spawn with probability 0.5" makes the
        same choices in every job with the same seed. Each call starts the stream afresh.
        """
        return run_generator(self.seed, "<adaptive strategy>", run, self.lineage)

    @property
    def generation(self) -> int:
        """0 for the top-level pipeline, 1 for its children, ..."""
        return len(self.lineage)

    @property
    def workspace(self) -> Path:
        """The node's workspace."""
        return self.pipeline.workspace_path


class AdaptiveFunction(Protocol):
    """A pipeline-level strategy, called in the driver when a run of any node has finished every phase.

    ``outcome`` is the run's last phase's outcome, ``outcomes`` every phase's by name, ``node``
    the pipeline the run belongs to. It returns the children it wants (possibly none).
    """

    def __call__(
        self, *, outcome: TaskOutcome, outcomes: Mapping[str, TaskOutcome], node: LineageNode
    ) -> Iterable[ChildRequest] | None: ...


@dataclass
class _NodeState:
    node: LineageNode
    summary: ChildSummary | None = None
    outcomes: dict[int, dict[str, TaskOutcome]] = field(default_factory=dict)
    token: str = ""


class AdaptiveHost:
    """Turns child requests into child graphs on the running driver (a driver listener).

    Give it the top-level pipeline, the job's seed and token, and attach the driver with
    :meth:`attach` before the driver runs. :meth:`summaries` is the lineage tree afterwards.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        seed: int,
        token: str,
        raise_errors: bool = False,
        limits: AdaptiveLimits | None = None,
        adaptive: AdaptiveFunction | Callable[..., Any] | None = None,
    ) -> None:
        self.seed = seed
        self.token = token
        self.raise_errors = raise_errors
        self.limits = limits or AdaptiveLimits()
        self.adaptive = adaptive
        self.driver: Driver | None = None
        self.accepted = 0
        root = LineageNode(name=pipeline.name, lineage=(), pipeline=pipeline, seed=seed)
        self._nodes: dict[tuple[str, ...], _NodeState] = {(): _NodeState(root, token=token)}
        self._refused: list[ChildSummary] = []

    def attach(self, driver: Driver) -> None:
        """The driver that runs the children (the one this host listens to)."""
        self.driver = driver

    @property
    def child_tokens(self) -> list[str]:
        """The tokens of the children that ran (their shared data is released with the job's)."""
        return [state.token for lineage, state in self._nodes.items() if lineage]

    def task_done(self, outcome: TaskOutcome) -> None:
        """Record an outcome; act on the child requests it carries and, at a run's end, on the strategy."""
        state = self._nodes.get(tuple(outcome.lineage))
        if state is None:  # pragma: no cover - an outcome of another job
            return
        for k, request in enumerate(outcome.children):
            self._request(state, request, f"{outcome.phase}-r{outcome.run}-{k}", outcome.run, outcome.phase)
        by_phase = state.outcomes.setdefault(outcome.run, {})
        by_phase[outcome.phase] = outcome
        phases = [p.name for p in state.node.pipeline.phases]
        if self.adaptive is not None and len(by_phase) == len(phases):
            self._ask_strategy(state, by_phase[phases[-1]], by_phase)

    def summaries(self) -> tuple[ChildSummary, ...]:
        """Every child request, run or refused, in tree order (the same whatever the order of completion)."""
        ran = [self._finish(state) for lineage, state in self._nodes.items() if lineage]
        return tuple(tree_order(ran + self._refused))

    def release(self, engine: Engine) -> None:
        """Drop the children's shared data on the workers (best effort, like the job's own)."""
        tokens = self.child_tokens
        if not tokens:
            return
        try:
            engine.run_everywhere(_clear_tokens, tokens)
        except Exception as exc:  # noqa: BLE001 - cleanup must never hide the job's result
            log.warning("could not release the children's shared data on the workers: %s", exc)

    # -- requests ---------------------------------------------------------------------------

    def _ask_strategy(self, state: _NodeState, last: TaskOutcome, by_phase: dict[str, TaskOutcome]) -> None:
        assert self.adaptive is not None
        try:
            requests = list(self.adaptive(outcome=last, outcomes=dict(by_phase), node=state.node) or ())
        except Exception as exc:
            if self.raise_errors:
                raise
            log.exception("the adaptive function raised for run %d of %s", last.run, state.node.name)
            refusal = f"the adaptive function raised: {type(exc).__name__}: {exc}"
            self._refuse(state, f"adaptive-r{last.run}", "(no request)", refusal, (last.run,), "adaptive function")
            return
        for k, request in enumerate(requests):
            if not isinstance(request, ChildRequest):
                refusal = f"the adaptive function returned {type(request).__name__}, not a gyre.ChildRequest"
                self._refuse(state, f"adaptive-r{last.run}-{k}", "(bad request)", refusal, (last.run,), "adaptive")
                continue
            self._request(state, request, f"adaptive-r{last.run}-{k}", last.run, "adaptive function")

    def _request(self, parent: _NodeState, request: ChildRequest, default: str, run: int, origin: str) -> None:
        segment = request.name or default
        runs = request.runs if request.runs is not None else (run,)
        by = f"{origin} run {run}" if origin != "adaptive function" else f"adaptive function after run {run}"
        generation = parent.node.generation + 1
        refusal = check_child_name(segment)
        if refusal is None and (*parent.node.lineage, segment) in self._nodes:
            refusal = f"a sibling is already named {segment!r}: give each request of a run its own name"
        if refusal is None and (self.driver is None or self.driver.cancelled):
            refusal = "the job was cancelled before the child could start"
        if refusal is None and generation > self.limits.max_generations:
            refusal = f"generation {generation} is beyond max_generations={self.limits.max_generations}"
        if refusal is None and self.accepted >= self.limits.max_children:
            refusal = f"max_children={self.limits.max_children} children have already been started"
        if refusal is not None:
            self._refuse(parent, segment, request.reason, refusal, runs, by)
            return
        try:
            pipeline = self._child_pipeline(parent, segment, request)
            pipeline.validate()
            selection = find_runs(pipeline.trace_path, runs, pattern=pipeline.run_pattern)
        except GyreError as exc:
            self._refuse(parent, segment, request.reason, str(exc), runs, by)
            return
        self._start(parent, segment, request, pipeline, selection, by)

    def _child_pipeline(self, parent: _NodeState, segment: str, request: ChildRequest) -> Pipeline:
        base = parent.node.pipeline
        name = f"{parent.node.name}.{segment}"
        phases = [copy.copy(p) for p in _resolve_phases(base, request)]
        by_name = {p.name: p for p in phases}
        for phase_name, values in request.params.items():
            if phase_name not in by_name:
                raise ConfigError(f"params name phase {phase_name!r}, which the child does not have ({list(by_name)})")
            phase = by_name[phase_name]
            for key, value in values.items():
                if key.startswith("_") or not hasattr(phase, key):
                    known = ", ".join(phase.config()) or "none"
                    raise ConfigError(f"phase {phase_name!r} has no parameter {key!r} (its parameters: {known})")
                setattr(phase, key, value)
        return Pipeline(
            phases,
            [True] * len(phases),
            base.workspace_path / "children" / name,
            request.inputs if request.inputs is not None else base.trace_path,
            seed=self.seed,
            run_pattern=request.run_pattern or base.run_pattern,
            name=name,
        )

    def _start(
        self,
        parent: _NodeState,
        segment: str,
        request: ChildRequest,
        pipeline: Pipeline,
        selection: RunSelection,
        by: str,
    ) -> None:
        lineage = (*parent.node.lineage, segment)
        node = LineageNode(
            name=pipeline.name,
            lineage=lineage,
            pipeline=pipeline,
            parent=parent.node.name,
            reason=request.reason,
            seed=self.seed,
        )
        token = f"{self.token}x{stable_int(pipeline.name) % 16**8:08x}"
        summary = ChildSummary(
            name=node.name,
            generation=node.generation,
            parent=parent.node.name,
            reason=request.reason,
            status="done",
            requested_by=by,
            runs=selection.runs,
            missing_runs=selection.missing,
            phases=tuple(p.name for p in pipeline.phases),
            workspace=pipeline.workspace_path,
        )
        state = _NodeState(node, summary=summary, token=token)
        self._nodes[lineage] = state
        self.accepted += 1
        try:
            pipeline.create_workspace()
            pipeline.create_assets()
        except GyreError as exc:
            log.error("child %s could not be prepared: %s", node.name, exc)
            state.summary = replace(summary, status="failed", error=str(exc))
            return
        chains = compile_chains(
            pipeline, selection, seed=self.seed, token=token, raise_errors=self.raise_errors, lineage=lineage
        )
        chains = [replace(c, priority=c.priority + node.generation * PRIORITY_STEP) for c in with_run_events(chains)]
        log.info("starting child %s (generation %d, runs %s): %s", node.name, node.generation, selection.runs, by)
        assert self.driver is not None
        self.driver.add_chains(chains)

    def _refuse(
        self, parent: _NodeState, segment: str, reason: str, refusal: str, runs: Sequence[int], by: str
    ) -> None:
        name = f"{parent.node.name}.{segment}"
        log.warning("child request %s refused: %s", name, refusal)
        self._refused.append(
            ChildSummary(
                name=name,
                generation=parent.node.generation + 1,
                parent=parent.node.name,
                reason=reason,
                status="refused",
                requested_by=by,
                runs=tuple(runs),
                refusal=refusal,
            )
        )

    def _finish(self, state: _NodeState) -> ChildSummary:
        summary = state.summary
        assert summary is not None
        outcomes = [o for by_phase in state.outcomes.values() for o in by_phase.values()]
        started = [o.started for o in outcomes if o.started is not None]
        finished = [o.finished for o in outcomes if o.finished is not None]
        failed = tuple(sorted({o.run for o in outcomes if o.status == "failed"}))
        status = summary.status
        if status != "failed":
            expected = len(summary.runs) * len(summary.phases)
            if failed:
                status = "failed"
            elif len(outcomes) < expected or not all(o.ok for o in outcomes):
                status = "skipped"
        error = summary.error or next((o.error for o in outcomes if o.status == "failed"), None)
        return replace(
            summary,
            status=status,
            failed_runs=failed,
            started=min(started) if started else None,
            finished=max(finished) if finished else None,
            error=error,
        )


def _resolve_phases(base: Pipeline, request: ChildRequest) -> list[Phase]:
    chosen = request.phases
    if chosen is None:
        return list(base.phases)
    if callable(chosen):
        chosen = chosen()
    phases: list[Phase] = []
    for item in chosen:
        if isinstance(item, str):
            phases.append(base.phase(item))
        elif isinstance(item, Phase):
            phases.append(item)
        else:
            raise ConfigError(f"a child's phases are Phase instances or phase names, not {type(item).__name__}")
    if not phases:
        raise ConfigError("a child request names no phases")
    return phases


def _clear_tokens(tokens: list[str]) -> int:
    return sum(clear_shared(token) for token in tokens)


def split_outcomes(outcomes: Iterable[TaskOutcome]) -> tuple[tuple[TaskOutcome, ...], tuple[TaskOutcome, ...]]:
    """The top-level pipeline's outcomes and the children's (each with its ``lineage``)."""
    outcomes = list(outcomes)
    return tuple(o for o in outcomes if not o.lineage), tuple(o for o in outcomes if o.lineage)
