"""Running a workflow on any execution model, and the report of what happened.

Every step without a cached result becomes one task; a task's inputs are the tasks of its
dependencies, so the scheduler starts each step as soon as its own inputs are done (levels
are for reading the graph, not barriers). Results travel through the cache directory, not
through the driver: a task returns only a small :class:`Outcome`.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..execution import resolve_model
from ..execution.launcher import refuse_launched_copies
from .inputs import Input
from .storage import find_result, load_result, store_result, write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from distributed import Client
    from rich.table import Table

    from ..execution import ExecutionModel

__all__ = ["Outcome", "RecordedStep", "RecordedWorkflow", "StepRecord", "WorkflowReport", "run_workflow"]

log = logging.getLogger(__name__)


class _StepFunction(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def qualified_name(self) -> str: ...


class RecordedStep(Protocol):
    """What running a workflow reads of a recorded step (:class:`gyre.steps.Step`)."""

    @property
    def name(self) -> str: ...
    @property
    def function(self) -> _StepFunction: ...
    @property
    def args(self) -> tuple[Any, ...]: ...
    @property
    def kwargs(self) -> dict[str, Any]: ...
    @property
    def deps(self) -> Sequence[RecordedStep]: ...
    @property
    def level(self) -> int: ...
    def argument_texts(self) -> dict[str, str]: ...


class RecordedWorkflow(Protocol):
    """What running a workflow reads of it (:class:`gyre.steps.Workflow`): its steps, cache and schema."""

    @property
    def name(self) -> str: ...
    @property
    def cache_dir(self) -> Path: ...
    @property
    def steps(self) -> Sequence[RecordedStep]: ...
    def check_schema(self, *, overwrite: bool = False) -> None: ...
    def fingerprints(self) -> dict[str, str]: ...


#: statuses whose result exists in the cache
USABLE = ("done", "cached")


@dataclass(frozen=True)
class Outcome:
    """What one step task returns: its status, where its result is, and its times."""

    status: str
    result: str | None = None
    start: float | None = None
    end: float | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class StepRecord:
    """One step's line in the report and in ``summary.json``."""

    name: str
    function: str
    arguments: dict[str, str]
    level: int
    depends_on: tuple[str, ...]
    fingerprint: str
    #: ``"done"`` (computed now), ``"cached"``, ``"failed"`` or ``"skipped"`` (a dependency did not succeed)
    status: str
    start: float | None = None
    end: float | None = None
    result: Path | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds the step's function took, ``None`` if it did not run."""
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass(frozen=True)
class WorkflowReport:
    """What a :meth:`Workflow.run` did, step by step; also written to ``<cache>/summary.json``."""

    workflow: str
    execution: str
    records: tuple[StepRecord, ...]
    wall_time: float
    summary_path: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every step has a result."""
        return all(r.status in USABLE for r in self.records)

    def __getitem__(self, name: str) -> StepRecord:
        for record in self.records:
            if record.name == name:
                return record
        raise KeyError(f"no step {name!r} in the report of workflow {self.workflow!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form written to ``summary.json``."""
        steps = []
        for record in self.records:
            entry = asdict(record)
            entry["duration"] = record.duration
            entry["result"] = None if record.result is None else str(record.result)
            steps.append(entry)
        return {
            "workflow": self.workflow,
            "execution": self.execution,
            "wall_time": self.wall_time,
            "counts": self.counts,
            "steps": steps,
        }

    def table(self) -> Table:
        """A compact rich table: level, step, status, duration, result file (arguments are in the summary)."""
        from rich.table import Table

        table = Table(title=f"workflow {self.workflow} ({self.execution}, {self.wall_time:.1f} s)")
        for column in ("level", "step", "status", "time", "result / error"):
            right, last = column in ("level", "time"), column == "result / error"
            table.add_column(column, justify="right" if right else "left", no_wrap=not last)
        colour = {"done": "green", "cached": "cyan", "failed": "red", "skipped": "yellow"}
        for r in self.records:
            shown = r.error or (_short(r.result) if r.result else "")
            table.add_row(
                str(r.level),
                r.name,
                f"[{colour.get(r.status, 'white')}]{r.status}[/]",
                "" if r.duration is None else f"{r.duration:.2f} s",
                shown.splitlines()[0][:200] if shown else "",
            )
        return table


def _short(path: Path) -> str:
    return f"{path.parent.name}/{path.stem[:8]}…{path.suffix}"


@dataclass(frozen=True)
class _Task:
    """Everything a worker needs to compute one step."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: tuple[str, ...]
    cache_dir: Path
    function: str
    fingerprint: str


def run_workflow(
    workflow: RecordedWorkflow,
    cluster: ExecutionModel | str | None = None,
    *,
    n_procs: int = 1,
    client: Client | None = None,
    display: bool = True,
    overwrite: bool = False,
) -> WorkflowReport:
    """Compute every step of ``workflow`` that has no cached result, and report on all of them.

    Parameters
    ----------
    cluster, n_procs, client
        Where the steps run, as for ``start_pipeline``: ``"sync"``, ``"local"`` (default,
        ``n_procs`` workers), ``"mpi"``, a scheduler address or file, an ``ExecutionModel``,
        or an existing ``client``.
    display
        Print a table of the outcome.
    overwrite
        Replace the definition stored in the cache directory if it belongs to another workflow.

    Raises
    ------
    SchemaConflictError
        The cache directory holds a different workflow and ``overwrite`` is false.
    Exception
        With an engine that raises errors (the default ``"sync"`` model), the first step's
        exception, unchanged.
    """
    model = resolve_model(cluster, n_procs=n_procs, client=client)
    refuse_launched_copies(model, entry="Workflow.run")
    workflow.check_schema(overwrite=overwrite)
    fingerprints = workflow.fingerprints()
    began = time.time()
    outcomes: dict[str, Outcome] = {}
    with model.open() as engine:
        token = uuid.uuid4().hex[:8]
        handles: dict[str, Any] = {}
        names: dict[str, str] = {}
        try:
            for step in workflow.steps:
                cached = find_result(workflow.cache_dir, step.function.name, fingerprints[step.name])
                if cached is not None:
                    outcomes[step.name] = Outcome("cached", result=str(cached))
                    continue
                task = _make_task(workflow, step, fingerprints[step.name])
                inputs = [handles[d.name] if d.name in handles else outcomes[d.name] for d in step.deps]
                key = f"{step.name}-{token}"
                names[key] = step.name
                handles[step.name] = engine.submit(execute_step, task, engine.raise_errors, *inputs, key=key)
            for finished in engine.completed():
                name = names[finished.key]
                if finished.error is None:
                    outcomes[name] = finished.value
                else:  # the engine lost the task (a dead worker, a cancel), or a dependency's
                    error = f"{type(finished.error).__name__}: {finished.error}"
                    outcomes[name] = Outcome("failed", error=error)
        except BaseException:
            engine.cancel()
            raise
        finally:
            handles.clear()
    report = _report(workflow, model.describe(), fingerprints, outcomes, time.time() - began)
    write_json_atomic(report.summary_path, report.to_dict())
    for record in report.records:
        if record.status == "failed":
            log.warning("step %s failed: %s\n%s", record.name, record.error, record.traceback or "")
    log.info(
        "workflow %s: %s in %.1f s",
        workflow.name,
        ", ".join(f"{n} {s}" for s, n in report.counts.items()),
        report.wall_time,
    )
    if display:
        from rich.console import Console

        Console().print(report.table())
    return report


def execute_step(task: _Task, raise_errors: bool, *inputs: Outcome) -> Outcome:
    """The task of one step: skip if an input has no result, else compute and store it."""
    for name, outcome in zip(task.deps, inputs, strict=True):
        if outcome.status not in USABLE:
            return Outcome("skipped", error=f"dependency {name!r} {outcome.status}")
    start = time.time()
    if raise_errors:
        return _compute(task, inputs, start)
    try:
        return _compute(task, inputs, start)
    except Exception as exc:  # noqa: BLE001 - one step is one unit of work; its dependants are skipped
        return Outcome(
            "failed",
            start=start,
            end=time.time(),
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )


def _compute(task: _Task, inputs: tuple[Outcome, ...], start: float) -> Outcome:
    loaded: dict[int, Any] = {}

    def fill(value: Any) -> Any:
        if isinstance(value, Input):
            if value.index not in loaded:
                loaded[value.index] = load_result(Path(str(inputs[value.index].result)))
            item = loaded[value.index]
            for key in value.keys:
                item = item[key]
            return item
        if type(value) in (list, tuple):
            return type(value)(fill(v) for v in value)
        if type(value) is dict:
            return {k: fill(v) for k, v in value.items()}
        return value

    value = task.fn(*fill(task.args), **fill(task.kwargs))
    end = time.time()
    path = store_result(
        value, cache_dir=task.cache_dir, function=task.function, fingerprint=task.fingerprint, step=task.name
    )
    return Outcome("done", result=str(path), start=start, end=end)


def _make_task(workflow: RecordedWorkflow, step: RecordedStep, fingerprint: str) -> _Task:
    return _Task(
        name=step.name,
        fn=step.function.fn,
        args=step.args,
        kwargs=step.kwargs,
        deps=tuple(d.name for d in step.deps),
        cache_dir=workflow.cache_dir,
        function=step.function.name,
        fingerprint=fingerprint,
    )


def _report(
    workflow: RecordedWorkflow,
    execution: str,
    fingerprints: dict[str, str],
    outcomes: dict[str, Outcome],
    wall_time: float,
) -> WorkflowReport:
    records: dict[str, StepRecord] = {}
    for step in workflow.steps:
        outcome = outcomes.get(step.name, Outcome("failed", error="the engine never reported this step"))
        blocked = [d.name for d in step.deps if records[d.name].status not in USABLE]
        if outcome.status == "failed" and outcome.traceback is None and blocked:
            outcome = Outcome("skipped", error=f"dependency {blocked[0]!r} {records[blocked[0]].status}")
        records[step.name] = StepRecord(
            name=step.name,
            function=step.function.qualified_name,
            arguments=step.argument_texts(),
            level=step.level,
            depends_on=tuple(d.name for d in step.deps),
            fingerprint=fingerprints[step.name],
            status=outcome.status,
            start=outcome.start,
            end=outcome.end,
            result=None if outcome.result is None else Path(outcome.result),
            error=outcome.error,
            traceback=outcome.traceback,
        )
    counts = Counter(r.status for r in records.values())
    return WorkflowReport(
        workflow=workflow.name,
        execution=execution,
        records=tuple(records.values()),
        wall_time=wall_time,
        summary_path=workflow.cache_dir / "summary.json",
        counts={s: counts[s] for s in ("done", "cached", "failed", "skipped") if counts[s]},
    )
