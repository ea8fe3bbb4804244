"""Small phases that request adaptive children, and a helper that runs them and describes the tree."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, RunContext, start_pipeline


class RefinePhase(Phase):
    """Estimates the signal's mean with noise of size ``step``; asks for a child with half the step.

    It spawns while ``step > target`` on the runs in ``spawn_runs`` (none by default, all if ``None``), or,
    with ``chance``, when a draw from ``ctx.rng`` falls below it. ``fail_on`` holds
    (generation, run) pairs on which it raises.
    """

    name = "refine"

    def __init__(
        self,
        *,
        step: float = 1.0,
        target: float = 0.0,
        spawn_runs: tuple[int, ...] | None = (),
        chance: float | None = None,
        sleep: float = 0.0,
        fail_on: tuple[tuple[int, int], ...] = (),
    ) -> None:
        super().__init__()
        self.step = step
        self.target = target
        self.spawn_runs = spawn_runs
        self.chance = chance
        self.sleep = sleep
        self.fail_on = fail_on

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        time.sleep(self.sleep)
        if (ctx.generation, ctx.run) in self.fail_on:
            raise RuntimeError(f"refine broke in generation {ctx.generation} on run {ctx.run}")
        with h5py.File(payload.artifacts["run"], "r") as handle:
            signal = handle["signal"][...]
        estimate = signal.mean() + ctx.rng.normal() * self.step
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("estimate", data=np.array([estimate, self.step, ctx.generation]))
        wanted = self.spawn_runs is None or ctx.run in self.spawn_runs
        if self.chance is not None:
            wanted = wanted and bool(ctx.rng.random() < self.chance)
        elif self.step <= self.target:
            wanted = False
        if wanted:
            ctx.spawn(f"step {self.step:g} too coarse", params={"refine": {"step": self.step / 2}})
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"step": self.step})


class TallyPhase(Phase):
    """estimate → estimate plus a random draw (so a child's second phase has its own stream too)."""

    name = "tally"

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        with h5py.File(payload.artifacts["refine"], "r") as handle:
            values = handle["estimate"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("tally", data=values + ctx.rng.normal(size=values.size))
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def make_pipeline(workspace: Path, run_dir: Path, *, seed: int = 5, **refine: Any) -> Pipeline:
    """refine → tally over ``run_dir``."""
    return Pipeline([RefinePhase(**refine), TallyPhase()], [True, True], workspace, run_dir, seed=seed)


def tree(report: Any) -> list[tuple[str, int, str, str, tuple[int, ...]]]:
    """(name, generation, parent, status, runs) of every child, sorted by name."""
    return sorted((c.name, c.generation, c.parent, c.status, tuple(c.runs)) for c in report.children)


def artifacts(workspace: Path) -> dict[str, str]:
    """Relative path → digest of every dataset of every artifact in the workspace, children included."""
    out = {}
    for path in sorted(Path(workspace).rglob("run_*.h5")):
        with h5py.File(path, "r") as handle:
            data = b"".join(handle[name][...].tobytes() for name in sorted(handle))
        out[str(path.relative_to(workspace))] = hashlib.sha256(data).hexdigest()
    return out


def run_tree(workspace: Path, run_dir: Path, **start: Any) -> dict[str, Any]:
    """Run the standard adaptive test job (runs 2 and 5 refine down to step 0.25) and describe it."""
    pipeline = make_pipeline(workspace, run_dir, step=1.0, target=0.25, spawn_runs=(2, 5))
    report = start_pipeline(pipeline, 1, 6, disable_display=True, **start)
    return {
        "ok": report.ok,
        "execution": report.execution,
        "tree": [[*item[:4], list(item[4])] for item in tree(report)],
        "artifacts": artifacts(workspace),
    }
