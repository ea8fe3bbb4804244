"""The plan of a job before it runs: per (phase, run), what ``start_pipeline`` would do and why.

:func:`dry_run` reads the workspace's manifest and run files and asks the resume planner
(:func:`gyre.job.resume.plan_resume`, the same code a job uses) for its decisions, then
turns each into a :class:`PlannedTask`: ``compute`` (never made, or the last attempt
failed), ``stale`` (made before, but out of date: the reason says what changed),
``cached`` (reused as it is) or ``missing input`` (no run file, or an inactive phase's
artifact that is not there).

It computes nothing, starts no cluster and writes nothing: no workspace is created, no
assets are built, no temporaries are swept, the manifest is not compacted and no seed is
drawn. It takes no lock either: the manifest is an append-only journal whose compaction
is an atomic rename, so reading it while a job runs is safe; the plan then describes the
workspace as it was when it was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from ..pipeline import Pipeline
from ..runs import RunFile, discover_runs, format_runs, plural, runs_phrase
from ..workspace.manifest import Manifest
from .estimate import estimate
from .options import JobOptions
from .resume import TaskDecision, inactive_artifact_exists, plan_resume, stored_seed

__all__ = ["JobPlan", "PlanGroup", "PlanState", "PlannedTask", "check_run_files", "dry_run"]

#: the seed a plan uses when the workspace has none yet; nothing is recorded, so every
#: (phase, run) is computed anyway and the value does not show
_NO_SEED_YET = 0


class PlanState(str, Enum):
    """What a job would do with one (phase, run)."""

    #: never made here (or its last attempt failed): it would be computed
    COMPUTE = "compute"
    #: made before, but out of date: it would be computed again
    STALE = "stale"
    #: reused as it is (an active phase's unchanged artifact or an inactive phase's)
    CACHED = "cached"
    #: cannot run: the run has no file, or an inactive phase's artifact is not there
    MISSING_INPUT = "missing input"

    @property
    def computes(self) -> bool:
        """Whether a job would compute a (phase, run) in this state."""
        return self in (PlanState.COMPUTE, PlanState.STALE)


@dataclass(frozen=True)
class PlannedTask:
    """One (phase, run) of a plan: its state, why, and further facts.

    ``facts`` holds what other parts of gyre know about the task before it runs (JSON-able
    values, shown in ``--json``); it is where, for instance, a cost estimate goes.
    """

    phase: str
    run: int
    state: PlanState
    reason: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The task as plain JSON-able values."""
        return {"phase": self.phase, "run": self.run, "state": self.state.value, "reason": self.reason, **self.facts}


@dataclass(frozen=True)
class PlanGroup:
    """The runs of one phase that share a state and a reason."""

    phase: str
    state: PlanState
    reason: str
    runs: tuple[int, ...]


@dataclass(frozen=True, repr=False)
class JobPlan:
    """What a job over ``run_min..run_max`` would do, per (phase, run), before it runs.

    ``exit_status`` is 0 when nothing would be computed and 1 otherwise (``gyre run --dry-run``).
    ``str(plan)`` is :meth:`render`; ``repr(plan)`` one line of counts.
    """

    pipeline: str
    workspace: Path
    run_min: int
    run_max: int
    phases: tuple[str, ...]
    active: tuple[bool, ...]
    tasks: tuple[PlannedTask, ...]
    seed: int | None
    missing_runs: tuple[int, ...] = ()
    skipped_runs: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    #: facts about the whole plan that other parts of gyre add (JSON-able; shown in ``--json``)
    facts: Mapping[str, Any] = field(default_factory=dict)
    #: lines for people about costs and parts (``gyre.job.estimate``), shown by :meth:`render`
    estimates: tuple[str, ...] = ()

    def with_facts(
        self,
        tasks: Mapping[tuple[str, int], Mapping[str, Any]] | None = None,
        **plan_facts: Any,
    ) -> JobPlan:
        """A copy with more facts: per (phase, run) in ``tasks``, about the whole plan as keywords.

        This is how a part of gyre that knows something before the job runs (a cost
        estimate, the predictor it came from) adds it without changing the plan's decisions.
        """
        extra = tasks or {}
        updated = tuple(
            replace(t, facts={**t.facts, **extra[(t.phase, t.run)]}) if (t.phase, t.run) in extra else t
            for t in self.tasks
        )
        return replace(self, tasks=updated, facts={**self.facts, **plan_facts})

    def __repr__(self) -> str:
        counts = ", ".join(f"{state.value} {self.count(state)}" for state in PlanState)
        return f"<JobPlan {self.pipeline!r} runs {self.run_min}-{self.run_max}: {counts}>"

    def __str__(self) -> str:
        return self.render()

    def task(self, phase: str, run: int) -> PlannedTask:
        """The plan of (phase, run); ``KeyError`` when it is not part of the plan."""
        for task in self.tasks:
            if task.phase == phase and task.run == run:
                return task
        raise KeyError((phase, run))

    def states(self) -> dict[tuple[str, int], PlanState]:
        """(phase, run) → its state."""
        return {(t.phase, t.run): t.state for t in self.tasks}

    def count(self, state: PlanState | str) -> int:
        """How many (phase, run)s are in ``state``."""
        return sum(1 for t in self.tasks if t.state == state)

    @property
    def computes(self) -> bool:
        """Whether the job would compute anything."""
        return any(t.state.computes for t in self.tasks)

    @property
    def exit_status(self) -> int:
        """0 when nothing would be computed, 1 otherwise."""
        return 1 if self.computes else 0

    def groups(self) -> list[PlanGroup]:
        """The tasks grouped by phase (in pipeline order), state and reason, each with its runs."""
        grouped: dict[tuple[str, PlanState, str], list[int]] = defaultdict(list)
        for task in self.tasks:
            grouped[(task.phase, task.state, task.reason)].append(task.run)
        order = {name: index for index, name in enumerate(self.phases)}
        return [
            PlanGroup(phase, state, reason, tuple(sorted(runs)))
            for (phase, state, reason), runs in sorted(
                grouped.items(), key=lambda kv: (order.get(kv[0][0], len(order)), min(kv[1]))
            )
        ]

    def render(self) -> str:
        """The plan for people: one line per phase, state and reason, with its runs as ranges.

        Runs without a file are named once, in the first line, rather than once per phase.
        """
        no_file = set(self.missing_runs)
        found = len({t.run for t in self.tasks} - no_file)
        head = f"plan of pipeline {self.pipeline!r} in {self.workspace}, runs {self.run_min}-{self.run_max}: "
        head += plural(found, "run file")
        if self.missing_runs:
            head += f", {len(self.missing_runs)} without a file ({runs_phrase(self.missing_runs)})"
        if self.skipped_runs:
            head += f", {len(self.skipped_runs)} skipped"
        lines = [head]
        width = max(len(p) for p in self.phases)
        for group in self.groups():
            if no_file.issuperset(group.runs):
                continue
            runs = plural(len(group.runs), "run")
            lines.append(
                f"  {group.phase:<{width}}  {group.state.value:<13} {runs} ({format_runs(group.runs)}): {group.reason}"
            )
        lines += [f"  {line}" for line in self.estimates]
        lines += [f"warning: {w}" for w in self.warnings]
        computed = sum(1 for t in self.tasks if t.state.computes)
        blocked = sum(1 for t in self.tasks if t.state == PlanState.MISSING_INPUT and t.run not in no_file)
        lines.append(
            f"would compute {plural(computed, '(phase, run)')}, reuse {self.count(PlanState.CACHED)}"
            + (f", cannot run {blocked}" if blocked else "")
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-able values (``--json``)."""
        return {
            "pipeline": self.pipeline,
            "workspace": str(self.workspace),
            "runs": [self.run_min, self.run_max],
            "seed": self.seed,
            "phases": [{"name": n, "active": a} for n, a in zip(self.phases, self.active)],
            "missing_runs": list(self.missing_runs),
            "skipped_runs": list(self.skipped_runs),
            "counts": {state.value: self.count(state) for state in PlanState},
            "would_compute": self.computes,
            "groups": [
                {"phase": g.phase, "state": g.state.value, "reason": g.reason, "runs": format_runs(g.runs)}
                for g in self.groups()
            ],
            "tasks": [t.to_dict() for t in self.tasks],
            "warnings": list(self.warnings),
            **self.facts,
        }


def dry_run(
    pipeline: Pipeline, run_min: int, run_max: int, options: JobOptions, *, n_threads: int | None = None
) -> JobPlan:
    """The plan of ``start_pipeline(pipeline, run_min, run_max, ...)`` with ``options``; computes nothing.

    Each (phase, run) to compute also gets its predicted cost and predictor, and, when
    ``n_threads`` (the worker threads the job would have) is known, the runs a phase's
    ``Split`` would cut into parts get them (``gyre.job.estimate``).

    Raises what the job's first step would: ``SchemaMismatchError`` for phases that do not
    fit, ``NoRunsError`` when no run of the range has a file, ``ConfigError`` for an unknown
    phase in ``options.force_phases``.
    """
    pipeline.validate()
    selection = discover_runs(
        pipeline.trace_path, run_min, run_max, pattern=pipeline.run_pattern, runs_to_skip=options.runs_to_skip
    )
    seed = pipeline.seed if pipeline.seed is not None else stored_seed(pipeline.workspace_path)
    manifest = Manifest(pipeline.workspace_path)
    resume = plan_resume(
        pipeline,
        selection,
        seed=_NO_SEED_YET if seed is None else seed,
        manifest=manifest,
        force=options.force,
        force_phases=options.force_phases,
        policy=options.resume,
    )
    tasks: list[PlannedTask] = []
    for run in selection.found:
        blocked: str | None = None
        for phase in pipeline.phases:
            decision = resume.decision(phase.name, run.run)
            if blocked is not None:
                tasks.append(PlannedTask(phase.name, run.run, PlanState.MISSING_INPUT, blocked))
                continue
            task = _planned(decision, pipeline)
            if task.state == PlanState.MISSING_INPUT:
                blocked = f"needs the artifact of inactive phase {phase.name!r}, which is not there"
            tasks.append(task)
    no_file = f"the run has no file (looked for {pipeline.run_pattern} in {pipeline.trace_path})"
    tasks += [
        PlannedTask(p.name, run, PlanState.MISSING_INPUT, no_file) for run in selection.missing for p in pipeline.phases
    ]
    order = {p.name: i for i, p in enumerate(pipeline.phases)}
    tasks.sort(key=lambda t: (order[t.phase], t.run))
    foreseen = estimate(
        pipeline, selection, resume, manifest, options, seed=_NO_SEED_YET if seed is None else seed, n_threads=n_threads
    )
    known = foreseen.tasks
    tasks = [
        replace(t, facts=known[(t.phase, t.run)]) if t.state.computes and (t.phase, t.run) in known else t
        for t in tasks
    ]
    return JobPlan(
        pipeline=pipeline.name,
        workspace=Path(pipeline.workspace_path),
        run_min=run_min,
        run_max=run_max,
        phases=tuple(p.name for p in pipeline.phases),
        active=tuple(pipeline.active),
        tasks=tuple(tasks),
        seed=seed,
        missing_runs=tuple(selection.missing),
        skipped_runs=tuple(selection.skipped),
        warnings=resume.warnings,
        facts=foreseen.facts,
        estimates=foreseen.lines,
    )


def _planned(decision: TaskDecision, pipeline: Pipeline) -> PlannedTask:
    """A resume decision as a plan state: the decision's reason, and the state it implies."""
    phase, run, reason = decision.phase, decision.run, decision.reason
    if decision.action == "cached":
        return PlannedTask(phase, run, PlanState.CACHED, reason)
    if decision.action == "load":
        if inactive_artifact_exists(pipeline.phase(phase), run, pipeline.workspace_path):
            return PlannedTask(phase, run, PlanState.CACHED, "inactive: its artifact is used as it is")
        reason = "inactive phase whose artifact is not there (activate the phase to compute it)"
        return PlannedTask(phase, run, PlanState.MISSING_INPUT, reason)
    made_before = decision.record is not None and decision.record.status == "done"
    return PlannedTask(phase, run, PlanState.STALE if made_before else PlanState.COMPUTE, reason)


def check_run_files(pipeline: Pipeline, run_files: Sequence[RunFile]) -> dict[RunFile, list[str]]:
    """Per run file, what the first phase's ``incoming_schema`` needs that it lacks (metadata only).

    Only the datasets' names and dtypes are read, never their data. Empty when the first
    phase is inactive or declares no schema; an unreadable file is one problem of its own.
    """
    schema = pipeline.phases[0].incoming_schema
    if not pipeline.active[0] or not schema:
        return {}
    problems = {}
    for run_file in run_files:
        try:
            found = schema.file_differences(run_file.path)
        except OSError as exc:
            found = [f"cannot be read as HDF5: {exc}"]
        if found:
            problems[run_file] = found
    return problems
