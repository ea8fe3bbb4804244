"""Tiny phases for the scale tests: ~zero work, or a short sleep; no files written."""

from __future__ import annotations

import time
from pathlib import Path

from gyre import Phase, PhaseResult, RunContext


def touch_runs(directory: Path, n_runs: int) -> None:
    """``n_runs`` run files of uneven sizes (no HDF5 content: the tiny phases never read them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for run in range(1, n_runs + 1):
        (directory / f"run_{run:04d}.h5").write_bytes(b"x" * (run % 13))


class NoopPhase(Phase):
    """Returns an empty result at once."""

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        return PhaseResult({}, run=ctx.run, metadata={"draw": float(ctx.rng.random())})


class SleepPhase(Phase):
    """Sleeps ``seconds`` and returns an empty result."""

    def __init__(self, name: str, seconds: float = 0.01) -> None:
        super().__init__(name)
        self.seconds = seconds

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        time.sleep(self.seconds)
        return PhaseResult({}, run=ctx.run)
