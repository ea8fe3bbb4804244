"""Phases that declare a split, for the tests of splitting runs by event range."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
from toyphases import count_call

from gyre import Phase, PhaseResult, RunContext, Schema, Split, iter_chunks, write_artifact


def make_uneven_runs(directory: Path, sizes: dict[int, int]) -> None:
    """Run files with a ``signal`` of ``sizes[run]`` events."""
    directory.mkdir(parents=True, exist_ok=True)
    for run, size in sizes.items():
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle.create_dataset("signal", data=np.random.default_rng(run).normal(size=size))


def _slow_here(ctx: RunContext) -> None:
    """Sleep the seconds in ``<workspace>/slow``, if it exists (outside the configuration: a resumed job is fast)."""
    marker = ctx.workspace / "slow"
    if marker.exists():
        time.sleep(float(marker.read_text()))


def _fail_here(ctx: RunContext) -> None:
    """Raise if ``<workspace>/fail_at`` names an event of this task (a fault switched on from outside)."""
    marker = ctx.workspace / "fail_at"
    if marker.exists() and ctx.events is not None and int(marker.read_text()) in ctx.events:
        raise RuntimeError(f"bad event {int(marker.read_text())}")


class NoisePhase(Phase):
    """signal → signal × 2 + a normal draw per event, from the event's block generator."""

    name = "noise"
    split = Split(dataset="signal", events_per_block=100)
    incoming_schema = Schema({"signal": "float64"})

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        assert ctx.events is not None
        count_call(ctx.workspace, self.name, ctx.run)
        _fail_here(ctx)
        _slow_here(ctx)
        chunks = {c.start: c["signal"] for c in iter_chunks(payload.artifacts["run"], ["signal"], events=ctx.events)}
        signal = np.concatenate([chunks[s] for s in sorted(chunks)])
        draws = np.concatenate([rng.normal(size=len(block)) for block, rng in ctx.event_blocks()])
        write_artifact(
            ctx.artifact_path(),
            {"noisy": ("event", 2 * signal + draws)},
            coords={"event": np.arange(ctx.events.start, ctx.events.stop)},
            run=ctx.run,
            phase=self.name,
        )
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"kind": "noise"})


class HitsPhase(Phase):
    """noisy → ``event % 3`` hits per event (a ragged ``point`` table), with drawn offsets."""

    name = "hits"
    split = Split(dataset="signal", events_per_block=50)

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        assert ctx.events is not None
        count_call(ctx.workspace, self.name, ctx.run)
        chunks = iter_chunks(payload.artifacts["noise"], ["noisy"], events=ctx.events)
        noisy = np.concatenate([c["noisy"] for c in chunks])
        counts = np.arange(ctx.events.start, ctx.events.stop) % 3
        values = []
        for block, rng in ctx.event_blocks():
            for event in block:
                values.append(noisy[event - ctx.events.start] + rng.uniform(size=event % 3))
        write_artifact(
            ctx.artifact_path(),
            {"value": ("point", np.concatenate(values)), "point_count": ("event", counts)},
            coords={"event": np.arange(ctx.events.start, ctx.events.stop)},
            run=ctx.run,
            phase=self.name,
        )
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class TotalPhase(Phase):
    """hits → their sum and count (a whole-run phase: the parts are merged before it)."""

    name = "total"

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        count_call(ctx.workspace, self.name, ctx.run)
        with h5py.File(payload.artifacts["hits"], "r") as hits:
            value = hits["value"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["sum"] = value.sum()
            out["n"] = len(value)
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"n": len(value)})
