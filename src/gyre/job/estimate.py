"""What a plan can tell before a job runs beyond its decisions: predicted costs and the parts of split runs.

:func:`estimate` asks the same code a job asks, with the workspace as it is: the cost model
(``gyre.job.costs``: per (phase, run) to compute, its predicted seconds and the predictor
that gave them) and the splitting decision (``gyre.job.splitting``: which runs would be cut
into which event ranges on ``n_threads`` worker threads, and which parts an earlier job
finished). It reads the manifest, the part journal and the run files' event counts, and
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..pipeline import Pipeline
from ..runs import RunSelection, duration_text, plural
from ..workspace.manifest import Manifest
from ..workspace.parts import PartJournal
from .chains import compile_chains
from .costs import CostModel, computed_phases
from .options import JobOptions
from .resume import ResumePlan
from .splitting import split_chains

__all__ = ["Estimate", "estimate"]


@dataclass(frozen=True)
class Estimate:
    """Per (phase, run) to compute, its predicted cost; per split run, its parts; and lines for people."""

    #: (phase, run) → {"predictor": ..., "predicted_seconds": ...} (seconds absent without a time scale)
    tasks: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    #: plan-wide facts: "costs" (the predictors used), "predicted_seconds" (their sum, or None), "parts"
    facts: dict[str, Any] = field(default_factory=dict)
    lines: tuple[str, ...] = ()


def estimate(
    pipeline: Pipeline,
    selection: RunSelection,
    resume: ResumePlan,
    manifest: Manifest,
    options: JobOptions,
    *,
    seed: int,
    n_threads: int | None,
) -> Estimate:
    """The costs and parts of the (phase, run)s ``resume`` computes, on ``n_threads`` threads.

    ``n_threads=None``: the cluster's size is not known before it starts (MPI, a scheduler,
    Slurm worker jobs), so the parts are not decided; the plan says so when a phase splits.
    """
    costs = CostModel.from_manifest(manifest, pipeline, selection)
    computed = computed_phases(resume)
    cells = [(phase, run) for run, phases in computed.items() for phase in phases]
    tasks: dict[tuple[str, int], dict[str, Any]] = {}
    total: float | None = 0.0
    for phase, run in cells:
        prediction = costs.predict(phase, run)
        tasks[(phase, run)] = {"predictor": prediction.predictor}
        if prediction.seconds is None:
            total = None
        else:
            tasks[(phase, run)]["predicted_seconds"] = round(prediction.seconds, 3)
            total = None if total is None else total + prediction.seconds
    summary = costs.summary(cells)
    lines = [
        summary
        + (f", about {duration_text(total, tenths_below=10)} of work in all" if cells and total is not None else "")
    ]
    facts: dict[str, Any] = {"costs": summary, "predicted_seconds": None if total is None else round(total, 3)}
    splits = options.split and any(p.split is not None for p, a in zip(pipeline.phases, pipeline.active) if a)
    if splits and cells:
        if n_threads is None:
            lines.append("parts: decided once the cluster has started (its size sets them)")
        else:
            parts, part_lines = _parts(pipeline, selection, resume, costs, options, seed=seed, n_threads=n_threads)
            facts["parts"] = parts
            lines += part_lines
            for run, entry in parts.items():
                for phase in entry["phases"]:
                    if (phase, run) in tasks:
                        tasks[(phase, run)]["parts"] = len(entry["events"])
    return Estimate(tasks, facts, tuple(lines))


def _parts(
    pipeline: Pipeline,
    selection: RunSelection,
    resume: ResumePlan,
    costs: CostModel,
    options: JobOptions,
    *,
    seed: int,
    n_threads: int,
) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """Run → its split phases, event ranges and parts already finished; and one line per split run."""
    computed = computed_phases(resume)
    order = costs.largest_first(selection.found, computed)
    chains = compile_chains(pipeline, selection, seed=seed, token="plan", order=order)
    cells = [(phase, run) for run, phases in computed.items() for phase in phases]
    split = split_chains(
        chains,
        resume,
        n_threads=n_threads,
        cost=costs.predictor(cells),  # as the job decides: learned seconds, else event counts
        journal=PartJournal(pipeline.workspace_path),
        policy=options.resume,
        enabled=options.split,
    )
    finished: dict[int, int] = {}
    for outcome in split.cached.values():
        finished[outcome.run] = finished.get(outcome.run, 0) + 1
    parts: dict[int, dict[str, Any]] = {}
    lines = []
    for chain in split.chains:
        if not chain.parts:
            continue
        run = chain.run.run
        phases = [chain.tasks[i].phase.name for i in sorted(chain.split)]
        parts[run] = {
            "phases": phases,
            "events": [[r.start, r.stop] for r in chain.parts],
            "finished_parts": finished.get(run, 0),
        }
        done = f", {finished[run]} finished by an earlier job" if run in finished else ""
        lines.append(
            f"parts: run {run} in {plural(len(chain.parts), 'part')} ({_ranges(chain.parts)}) "
            f"for {', '.join(repr(p) for p in phases)}{done}"
        )
    if not parts:
        lines.append(f"parts: no run is split on {plural(n_threads, 'worker thread')}")
    return parts, lines


def _ranges(parts: Sequence[range]) -> str:
    """``events 0-999, 1000-1999, ...`` shortened to the first two and the last when long."""
    shown = [f"{r.start}-{r.stop - 1}" for r in parts]
    if len(shown) > 4:
        shown = [shown[0], shown[1], "...", shown[-1]]
    return "events " + ", ".join(shown)
