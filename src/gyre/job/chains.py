"""Compile a pipeline over runs into tasks: one per (phase, run), chained per run, largest run first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..pipeline import Pipeline
from ..result import PhaseResult
from ..runs import RunFile, RunSelection
from .worker import PickledPhase, TaskSpec

__all__ = ["PLAN_COLOURS", "RunChain", "compile_chains", "task_key", "to_dot"]


def task_key(phase: str, token: str, run: int) -> str:
    """The dask key of a (phase, run): ``<phase>-<token>-<run>``; the dashboard groups it under ``<phase>``."""
    return f"{phase}-{token}-{run}"


@dataclass(frozen=True)
class RunChain:
    """The tasks of one run, in phase order, with the run's scheduling priority and input payload."""

    run: RunFile
    tasks: tuple[TaskSpec, ...]
    keys: tuple[str, ...]
    priority: int
    #: a split run's parts (event ranges, in order) and the indices of the phases computed in
    #: parts (``gyre.job.splitting``); empty for a run computed whole
    parts: tuple[range, ...] = ()
    split: frozenset[int] = frozenset()

    @property
    def payload(self) -> PhaseResult:
        """What the first phase receives: the run file."""
        return PhaseResult(artifacts={"run": self.run.path}, run=self.run.run)


def compile_chains(
    pipeline: Pipeline,
    selection: RunSelection,
    *,
    seed: int,
    token: str,
    raise_errors: bool = False,
    lineage: Sequence[str] = (),
    order: Sequence[RunFile] | None = None,
) -> list[RunChain]:
    """One chain per found run, ordered largest run first (longest-processing-time first).

    An active phase becomes a compute task, an inactive one a cheap task that resolves its
    cached artifact. The priority falls with the run's rank, so the scheduler starts the
    largest runs first and finishes a started run before smaller ones. ``order`` gives the
    runs largest first (e.g. by learned cost, ``CostModel.largest_first``); by default they
    are ordered by file size.
    """
    ordered = tuple(order) if order is not None else selection.largest_first()
    first_schema = pipeline.phases[0].incoming_schema if pipeline.active[0] else None
    pickled = [PickledPhase(phase) for phase in pipeline.phases]  # pickled once per job, not per task
    chains = []
    for rank, run in enumerate(ordered):
        specs = tuple(
            TaskSpec(
                phase=phase,
                run=run.run,
                compute=active,
                workspace=pipeline.workspace_path,
                seed=seed,
                token=token,
                lineage=tuple(lineage),
                run_file_schema=first_schema if index == 0 else None,
                raise_errors=raise_errors,
                pickled=pickled[index],
            )
            for index, (phase, active) in enumerate(zip(pipeline.phases, pipeline.active))
        )
        keys = tuple(task_key(spec.phase.name, token, run.run) for spec in specs)
        chains.append(RunChain(run=run, tasks=specs, keys=keys, priority=len(ordered) - rank))
    return chains


#: fill colours of ``to_dot``'s nodes by plan state
PLAN_COLOURS = {"compute": "#f4a261", "stale": "#e9c46a", "cached": "#a8d5a2", "missing input": "#d3d3d3"}


def to_dot(
    chains: Sequence[RunChain], *, name: str = "pipeline", states: Mapping[tuple[str, int], str] | None = None
) -> str:
    """The phase/run graph in Graphviz DOT: one node per (phase, run), inactive phases dashed.

    With ``states`` (a plan's (phase, run) → ``compute``/``stale``/``cached``/``missing input``)
    each node is labelled and filled by what the job would do with it (``PLAN_COLOURS``).
    """
    lines = [f'digraph "{name}" {{', "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for chain in chains:
        run = chain.run.run
        lines.append(f'  "run-{run}" [label="run {run}\\n{chain.run.size} B", shape=folder];')
        previous = f"run-{run}"
        for index, spec in enumerate(chain.tasks):
            node = f"{spec.phase.name}-{run}"
            style = "solid" if spec.compute else "dashed"
            mode = "compute" if spec.compute else "cached"
            fill = ""
            if states is not None and (spec.phase.name, run) in states:
                mode = str(states[(spec.phase.name, run)])
                style = f'"filled,{style}"'
                fill = f', fillcolor="{PLAN_COLOURS.get(mode, "white")}"'
            if index in chain.split:
                mode += f", {len(chain.parts)} parts, merged"
            lines.append(f'  "{node}" [label="{spec.phase.name}\\nrun {run} ({mode})", style={style}{fill}];')
            lines.append(f'  "{previous}" -> "{node}";')
            previous = node
    lines.append("}")
    return "\n".join(lines) + "\n"
