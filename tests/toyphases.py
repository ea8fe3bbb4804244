"""Small phases for tests: they write real HDF5 artifacts and count their calls in files."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, RunContext, Schema


def count_call(workspace: Path, phase: str, run: int) -> None:
    """Record one call of ``phase`` on ``run`` (a file per call: safe across processes)."""
    calls = Path(workspace) / "calls" / phase
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"{run}-{os.getpid()}-{len(list(calls.iterdir()))}").touch()


def calls(workspace: Path, phase: str) -> list[int]:
    """The runs ``phase`` was called on, one entry per call."""
    folder = Path(workspace) / "calls" / phase
    return sorted(int(p.name.split("-")[0]) for p in folder.iterdir()) if folder.exists() else []


def artifact_bytes(workspace: Path) -> dict[str, bytes]:
    """Every dataset of every run artifact in ``workspace``, as raw bytes, by phase/file/dataset."""
    out = {}
    for path in sorted(Path(workspace).glob("*/run_*.h5")):
        with h5py.File(path, "r") as handle:
            for name in handle:
                out[f"{path.parent.name}/{path.name}/{name}"] = handle[name][...].tobytes()
    return out


def make_run_files(directory: Path, runs: list[int], *, events: int | None = None) -> None:
    """Run files with a ``signal`` dataset whose length grows with the run number."""
    directory.mkdir(parents=True, exist_ok=True)
    for run in runs:
        rng = np.random.default_rng(run)
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle.create_dataset("signal", data=rng.normal(size=events or 10 * run))


class ScalePhase(Phase):
    """signal → signal × factor + noise from ctx.rng."""

    name = "scale"
    incoming_schema = Schema({"signal": "float64"})
    outgoing_schema = Schema({"scaled": "float64"})

    def __init__(self, factor: float = 2.0, fail_on: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.factor = factor
        self.fail_on = fail_on

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        count_call(ctx.workspace, self.name, ctx.run)
        if ctx.run in self.fail_on:
            raise ValueError(f"bad calibration for run {ctx.run}")
        with h5py.File(payload.artifacts["run"], "r") as handle:
            signal = handle["signal"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("scaled", data=signal * self.factor + ctx.rng.normal(size=signal.size))
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class SumPhase(Phase):
    """scaled → its cumulative sum."""

    name = "sum"
    incoming_schema = Schema({"scaled": "float64"})
    outgoing_schema = Schema({"cumsum": "float64"})

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        count_call(ctx.workspace, self.name, ctx.run)
        with h5py.File(payload.artifacts["scale"], "r") as handle:
            scaled = handle["scaled"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("cumsum", data=np.cumsum(scaled))
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class StatPhase(Phase):
    """cumsum → a few statistics, including a random bootstrap draw."""

    name = "stat"
    incoming_schema = Schema({"cumsum": "float64"})
    outgoing_schema = Schema({"stats": "float64"})

    def create_assets(self, workspace: Path) -> bool:
        np.save(self.asset_dir(workspace) / "weights.npy", np.array([1.0, 2.0, 3.0]))
        return True

    def shared_data(self, workspace: Path) -> np.ndarray:
        count_call(workspace, "stat-shared", 0)
        return np.load(self.asset_dir(workspace) / "weights.npy")

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        count_call(ctx.workspace, self.name, ctx.run)
        with h5py.File(payload.artifacts["sum"], "r") as handle:
            values = handle["cumsum"][...]
        draw = ctx.rng.choice(values, size=5)
        stats = np.array([values.mean(), values.std(), *draw]) * ctx.shared.sum()
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("stats", data=stats)
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"mean": float(values.mean())})
