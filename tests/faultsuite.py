"""The fault-injection suite's bookkeeping and phases: when each (phase, run) finished on its
worker, what a fault lost, what the next start recomputed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
from faultphases import SlowSum
from toyphases import ScalePhase, StatPhase, SumPhase, count_call

import gyre
from gyre import Manifest, PhaseResult, RunContext

Key = tuple[str, int]


def stamp(ctx: RunContext) -> None:
    """Record, on the worker, that this (phase, run) finished now (its file name holds the time)."""
    folder = Path(ctx.workspace) / "finished"
    folder.mkdir(exist_ok=True)
    (folder / f"{ctx.phase}-{ctx.run}-{os.getpid()}-{time.time():.6f}").touch()


def finished_before(workspace: Path, moment: float) -> set[Key]:
    """The (phase, run)s whose phase returned on its worker before ``moment`` (epoch seconds)."""
    folder = Path(workspace) / "finished"
    out = set()
    for path in folder.iterdir() if folder.exists() else ():
        phase, run, _, when = path.name.split("-")
        if float(when) < moment:
            out.add((phase, int(run)))
    return out


def recorded(workspace: Path) -> set[Key]:
    """The (phase, run)s whose record of a computed result is in the manifest on disk."""
    return {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}


def extra_calls(workspace: Path, keys: set[Key]) -> int:
    """How many times phases were called on ``keys`` beyond once each: finished work redone."""
    total = 0
    for phase, run in keys:
        folder = Path(workspace) / "calls" / phase
        calls = [p for p in folder.iterdir() if p.name.split("-")[0] == str(run)] if folder.exists() else []
        total += max(0, len(calls) - 1)
    return total


class StampedScale(ScalePhase):
    """ScalePhase that stamps its finish; fails while ``fail-<run>`` exists in the workspace."""

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        if (Path(ctx.workspace) / f"fail-{ctx.run}").exists():
            count_call(ctx.workspace, self.name, ctx.run)
            raise ValueError(f"run {ctx.run} is marked to fail")
        result = super().run(payload, ctx)
        stamp(ctx)
        return result


class StampedSum(SlowSum):
    """SlowSum that stamps its finish."""

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        result = super().run(payload, ctx)
        stamp(ctx)
        return result


class StampedStat(StatPhase):
    """StatPhase that stamps its finish."""

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        result = super().run(payload, ctx)
        stamp(ctx)
        return result


class DyingWriter(SumPhase):
    """SumPhase written with ``gyre.write_artifact``; its worker dies inside that call on ``kill_on`` runs, once."""

    def __init__(self, kill_on: tuple[int, ...] = ()) -> None:
        super().__init__()
        self._kill_on = kill_on

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        import h5py

        from gyre.io import artifacts

        count_call(ctx.workspace, self.name, ctx.run)
        with h5py.File(payload.artifacts["scale"], "r") as handle:
            scaled = handle["scaled"][...]
        marker = Path(ctx.workspace) / f"killed-writer-{ctx.run}"
        if ctx.run in self._kill_on and not marker.exists():
            marker.touch()
            real = artifacts._set_attrs

            def die(*args: object) -> None:  # after the data went into the temporary file
                time.sleep(1.0)  # the worker's earlier result has reached the driver by now
                os.kill(os.getpid(), signal.SIGKILL)

            artifacts._set_attrs = die  # type: ignore[assignment]
            try:
                gyre.write_artifact(ctx.artifact_path(), {"cumsum": ("sample", np.cumsum(scaled))})
            finally:
                artifacts._set_attrs = real
        gyre.write_artifact(ctx.artifact_path(), {"cumsum": ("sample", np.cumsum(scaled))})
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def stamped_module(directory: Path, workspace: Path, runs: Path, *, delay: float) -> Path:
    """A pipeline file for ``gyre run``: stamped scale → a slow stamped sum → stamped stat."""
    path = directory / "stamped_pipeline.py"
    path.write_text(
        "import gyre\n"
        "from faultsuite import StampedScale, StampedStat, StampedSum\n"
        f"pipeline = gyre.Pipeline([StampedScale(), StampedSum({delay}), StampedStat()], [True] * 3, "
        f"{str(workspace)!r}, {str(runs)!r}, seed=5)\n"
    )
    return path
