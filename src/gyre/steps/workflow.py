"""Workflow, step functions and lazy steps: recording a graph of plain function calls."""

from __future__ import annotations

import functools
import inspect
import json
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from .errors import SchemaConflictError, StepDefinitionError, StepResultError
from .fingerprint import UnstableArgument, code_fingerprint, combine, value_token
from .inputs import Input
from .storage import find_result, last_record, load_result

if TYPE_CHECKING:
    from distributed import Client

    from ..execution import ExecutionModel
    from .execute import WorkflowReport

__all__ = ["Placeholder", "Step", "StepFunction", "Workflow"]

_RESERVED = ("depends_on", "step_name")
_NOT_ITERABLE = (
    "the result of step {} is not known until the workflow runs, so it cannot be unpacked or "
    "iterated: index it instead (step[0], step['key'])"
)


class Workflow:
    """A named graph of function steps whose results are cached in ``cache_dir``.

    Decorate functions with :meth:`step`; calling them records lazy :class:`Step` objects;
    :meth:`run` computes what is not cached yet; :meth:`get_result` reads a result back.
    """

    def __init__(self, name: str, cache_dir: str | Path) -> None:
        if not name or not isinstance(name, str):
            raise StepDefinitionError(f"a workflow needs a non-empty name, got {name!r}")
        self.name = name
        self.cache_dir = Path(cache_dir).absolute()  # workers may run in another directory
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._steps: dict[str, Step] = {}

    @overload
    def step(self, fn: Callable[..., Any], /, *, name: str | None = None) -> StepFunction: ...
    @overload
    def step(self, fn: None = None, /, *, name: str | None = None) -> Callable[[Callable[..., Any]], StepFunction]: ...

    def step(
        self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None
    ) -> StepFunction | Callable[[Callable[..., Any]], StepFunction]:
        """Turn a function into a step function of this workflow (``@wf.step`` or ``@wf.step(name=...)``)."""

        def decorate(func: Callable[..., Any]) -> StepFunction:
            return StepFunction(self, func, name=name)

        return decorate if fn is None else decorate(fn)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The recorded steps, in the order they were called (dependencies first)."""
        return tuple(self._steps.values())

    def __getitem__(self, name: str) -> Step:
        try:
            return self._steps[name]
        except KeyError:
            known = ", ".join(self._steps) or "none"
            raise KeyError(f"workflow {self.name!r} has no step {name!r} (steps: {known})") from None

    def levels(self) -> list[list[Step]]:
        """The steps grouped by level: level 1 has no dependencies, level n depends on level n-1."""
        grouped: dict[int, list[Step]] = {}
        for step in self._steps.values():
            grouped.setdefault(step.level, []).append(step)
        return [grouped[level] for level in sorted(grouped)]

    def describe(self) -> str:
        """A text table of the steps by level, with what each depends on."""
        lines = [f"workflow {self.name!r}: {len(self._steps)} steps in {len(self.levels())} levels"]
        width = max((len(s.name) for s in self._steps.values()), default=4)
        for step in self._steps.values():
            deps = ", ".join(d.name for d in step.deps) or "-"
            lines.append(f"  level {step.level}  {step.name:<{width}}  {step.call_text():<40}  after: {deps}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT: one cluster per level; dashed edges are ordering-only."""
        lines = [f"digraph {json.dumps(self.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
        for number, level in enumerate(self.levels(), start=1):
            lines.append(f'  subgraph cluster_level_{number} {{ label="level {number}";')
            lines.extend(f"    {json.dumps(s.name)} [label={json.dumps(s.call_text())}];" for s in level)
            lines.append("  }")
        for step in self._steps.values():
            for dep in step.deps:
                style = " [style=dashed]" if dep in step.order_only else ""
                lines.append(f"  {json.dumps(dep.name)} -> {json.dumps(step.name)}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def schema(self) -> dict[str, Any]:
        """The workflow's structure (steps, functions, dependencies) as stored in ``workflow.json``."""
        return {
            "workflow": self.name,
            "steps": {
                s.name: {"function": s.function.qualified_name, "depends_on": [d.name for d in s.deps]}
                for s in self._steps.values()
            },
        }

    def check_schema(self, *, overwrite: bool = False) -> None:
        """Refuse a cache directory written by a different workflow, then record this one there."""
        from .storage import write_json_atomic

        path = self.cache_dir / "workflow.json"
        mine = self.schema()
        if path.exists() and not overwrite:
            try:
                theirs = json.loads(path.read_text())
            except ValueError:
                theirs = {"workflow": "<unreadable>", "steps": {}}
            if theirs != mine:
                raise SchemaConflictError(
                    f"cache directory {self.cache_dir} holds workflow {theirs.get('workflow')!r} with a "
                    f"different definition ({_differences(theirs, mine)}); use another cache_dir, or "
                    "run(overwrite=True) to replace the stored definition (results whose fingerprints "
                    "still match are reused)"
                )
        write_json_atomic(path, mine)

    def fingerprints(self) -> dict[str, str]:
        """Each step's current fingerprint: its function's code and data, arguments and dependencies."""
        code: dict[int, str] = {}
        result: dict[str, str] = {}
        for step in self._steps.values():
            fn = step.function
            if id(fn) not in code:
                code[id(fn)] = code_fingerprint(fn.fn)
            deps = (result[d.name] for d in step.deps)
            result[step.name] = combine(code[id(fn)], step.arguments_token, *deps)
        return result

    def run(
        self,
        cluster: ExecutionModel | str | None = None,
        *,
        n_procs: int = 1,
        client: Client | None = None,
        display: bool = True,
        overwrite: bool = False,
    ) -> WorkflowReport:
        """Compute every step without a cached result; see :func:`gyre.steps.execute.run_workflow`."""
        from .execute import run_workflow

        return run_workflow(self, cluster, n_procs=n_procs, client=client, display=display, overwrite=overwrite)

    def get_result(self, step: str | Step) -> Any:
        """Load a step's cached result.

        Raises
        ------
        StepResultError
            The step failed or was skipped in the last run, or never ran with its current definition.
        """
        step = self[step] if isinstance(step, str) else step
        fingerprint = self.fingerprints()[step.name]
        path = find_result(self.cache_dir, step.function.name, fingerprint)
        if path is not None:
            return load_result(path)
        last = last_record(self.cache_dir, step.name)
        if (
            last is not None
            and last.get("fingerprint") == fingerprint
            and last.get("status")
            in (
                "failed",
                "skipped",
            )
        ):
            status = str(last["status"])
            detail = f"\n{last['traceback']}" if last.get("traceback") else ""
            raise StepResultError(
                f"step {step.name!r} {status} in the last run: {last.get('error')}{detail}",
                step=step.name,
                status=status,
            )
        raise StepResultError(
            f"step {step.name!r} has no cached result for its current definition "
            f"(fingerprint {fingerprint[:12]}): run the workflow first (workflow.run())",
            step=step.name,
            status="not run",
        )

    def _add(self, step: Step) -> None:
        self._steps[step.name] = step

    def _unique_name(self, base: str) -> str:
        name, number = base, 1
        while name in self._steps:
            number += 1
            name = f"{base}_{number}"
        return name

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, {str(self.cache_dir)!r}, steps={len(self._steps)})"


class StepFunction:
    """A function decorated by :meth:`Workflow.step`: calling it records a lazy :class:`Step`.

    Two keyword arguments of the call are the workflow's own: ``depends_on=[...]`` adds
    ordering-only dependencies, ``step_name=...`` names the step (default: the function's
    name, numbered ``_2``, ``_3`` ... for later calls).
    """

    def __init__(self, workflow: Workflow, fn: Callable[..., Any], *, name: str | None = None) -> None:
        if not inspect.isfunction(fn):
            raise StepDefinitionError(f"a step must be a plain Python function, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.fn: types.FunctionType = fn
        self.workflow = workflow
        self.name = name or fn.__name__
        self.qualified_name = f"{fn.__module__}.{fn.__qualname__}"
        self.signature = inspect.signature(fn)
        clash = [p for p in _RESERVED if p in self.signature.parameters]
        if clash:
            raise StepDefinitionError(
                f"step function {self.name!r} has a parameter named {clash[0]!r}, which step calls "
                f"reserve for the workflow: rename the parameter"
            )

    def __call__(
        self, *args: Any, depends_on: Iterable[Step] = (), step_name: str | None = None, **kwargs: Any
    ) -> Step:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise StepDefinitionError(f"cannot call step {self.name!r} with these arguments: {exc}") from exc
        bound.apply_defaults()
        if step_name is not None and step_name in self.workflow._steps:
            raise StepDefinitionError(
                f"workflow {self.workflow.name!r} already has a step named {step_name!r}: choose another step_name"
            )
        name = step_name or self.workflow._unique_name(self.name)
        step = Step(self, name, dict(bound.arguments), bound.args, bound.kwargs, list(depends_on))
        self.workflow._add(step)
        return step

    def __repr__(self) -> str:
        return f"<step function {self.name} of workflow {self.workflow.name!r}>"


class Step:
    """One recorded call of a step function. It computes nothing; it stands for its result.

    Pass it (or ``step[key]``, an item of its result) to another step to make a dependency.
    """

    def __init__(
        self,
        function: StepFunction,
        name: str,
        arguments: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        depends_on: list[Step],
    ) -> None:
        self.function = function
        self.name = name
        self.arguments = arguments
        deps: list[Step] = []
        self.args = _swap(args, function, deps)
        self.kwargs = _swap(kwargs, function, deps)
        self.order_only: tuple[Step, ...] = ()
        for dep in depends_on:
            if not isinstance(dep, Step) or dep.function.workflow is not function.workflow:
                raise StepDefinitionError(
                    f"depends_on of step {name!r} must list steps of workflow {function.workflow.name!r}, got {dep!r}"
                )
            if dep not in deps:
                deps.append(dep)
                self.order_only += (dep,)
        self.deps: tuple[Step, ...] = tuple(deps)
        self.level: int = 1 + max((d.level for d in deps), default=0)
        try:
            self.arguments_token = value_token(_swap(arguments, function, list(deps)))
        except UnstableArgument as exc:
            raise StepDefinitionError(
                f"an argument of step {name!r} cannot be fingerprinted the same way in every process "
                f"({exc}); pass numbers, strings, numpy arrays, dataclasses or lists/dicts of them"
            ) from exc

    def __getitem__(self, key: Any) -> Placeholder:
        return Placeholder(self, (key,))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(_NOT_ITERABLE.format(self.name))

    def argument_texts(self) -> dict[str, str]:
        """The call's arguments as short texts: steps by name, arrays by shape, long values cut."""
        return argument_texts(self.arguments)

    def call_text(self) -> str:
        """``function(arg=value, ...)`` with short argument texts, for tables and graphs."""
        text = ", ".join(f"{k}={v}" for k, v in self.argument_texts().items())
        return f"{self.function.name}({text})"

    def __repr__(self) -> str:
        return f"<step {self.name}: {self.call_text()}, level {self.level}>"


class Placeholder:
    """An item of a step's result (``step["gain"]``, ``step[0]``), usable as an argument."""

    def __init__(self, step: Step, keys: tuple[Any, ...]) -> None:
        self.step = step
        self.keys = keys

    def __getitem__(self, key: Any) -> Placeholder:
        return Placeholder(self.step, (*self.keys, key))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(_NOT_ITERABLE.format(repr(self)))

    def __repr__(self) -> str:
        return self.step.name + "".join(f"[{k!r}]" for k in self.keys)


def _swap(value: Any, function: StepFunction, deps: list[Step]) -> Any:
    """``value`` with each step or placeholder replaced by an :class:`Input`; collects the deps."""
    if isinstance(value, (Step, Placeholder)):
        step, keys = (value, ()) if isinstance(value, Step) else (value.step, value.keys)
        if step.function.workflow is not function.workflow:
            raise StepDefinitionError(
                f"step {step.name!r} belongs to workflow {step.function.workflow.name!r}, "
                f"not {function.workflow.name!r}"
            )
        if step not in deps:
            deps.append(step)
        return Input(deps.index(step), keys)
    if type(value) in (list, tuple):
        return type(value)(_swap(v, function, deps) for v in value)
    if type(value) is dict:
        return {k: _swap(v, function, deps) for k, v in value.items()}
    return value


def argument_texts(arguments: dict[str, Any]) -> dict[str, str]:
    """Short texts of arguments: steps by name, arrays by shape, long values cut."""

    def text(value: Any) -> str:
        if isinstance(value, Step):
            return f"<{value.name}>"
        if isinstance(value, Placeholder):
            return f"<{value!r}>"
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        if shape is not None and dtype is not None:
            return f"array{tuple(shape)}:{dtype}"
        if isinstance(value, (list, tuple)) and any(isinstance(v, (Step, Placeholder)) for v in value):
            shown = "[" + ", ".join(text(v) for v in value) + "]"
        else:
            shown = repr(value)
        return shown if len(shown) <= 40 else shown[:37] + "..."

    return {name: text(value) for name, value in arguments.items()}


def _differences(theirs: dict[str, Any], mine: dict[str, Any]) -> str:
    notes = []
    if theirs.get("workflow") != mine["workflow"]:
        notes.append(f"it is named {theirs.get('workflow')!r}, this one {mine['workflow']!r}")
    old, new = theirs.get("steps", {}), mine["steps"]
    if set(old) - set(new):
        notes.append(f"steps only there: {', '.join(sorted(set(old) - set(new)))}")
    if set(new) - set(old):
        notes.append(f"steps only here: {', '.join(sorted(set(new) - set(old)))}")
    changed = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    if changed:
        notes.append(f"steps with another function or dependencies: {', '.join(changed)}")
    return "; ".join(notes) or "stored file differs"
