"""A starting point for a gyre analysis: two phases, configured by config.toml.

Run it with

    gyre validate pipeline.py:pipeline --runs 1-10      # check, compute nothing
    gyre assets pipeline.py:pipeline                    # build assets ahead of a batch job
    gyre run pipeline.py:pipeline --runs 1-10 --procs 4

Each phase reads the previous phase's artifact (``payload.artifacts[...]``), writes its own
through ``ctx.artifact()`` (atomic: a crash never leaves a half-written file), and takes its
randomness only from ``ctx.rng``. Replace the bodies with your analysis.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, RunContext, Schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
CONFIG = tomllib.loads((HERE / "config.toml").read_text())


class PeakPhase(Phase):
    """Find, per event, the samples above a threshold in the run file's ``traces``."""

    name = "peaks"
    incoming_schema = Schema({"traces": None})
    outgoing_schema = Schema({"event": "int64", "peak": "float64"})

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        with h5py.File(payload.artifacts["run"], "r") as run_file:
            traces = run_file["traces"]
            ctx.progress.set_total(traces.shape[0])
            events, peaks = [], []
            for event in range(traces.shape[0]):  # one event at a time keeps memory flat
                trace = np.asarray(traces[event], dtype=np.float64).reshape(-1)
                events.append(event)
                peaks.append(trace.max() if trace.max() > self.threshold else np.nan)
                ctx.progress.update()
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["event"] = np.array(events, dtype=np.int64)
            out["peak"] = np.array(peaks, dtype=np.float64)
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class SummaryPhase(Phase):
    """Summarise the peaks of a run: how many events passed and their mean peak."""

    name = "summary"
    incoming_schema = Schema({"event": "int64", "peak": "float64"})
    outgoing_schema = Schema({"summary": "float64"})

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        with h5py.File(payload.artifacts["peaks"], "r") as peaks_file:
            peaks = peaks_file["peak"][...]
        passed = peaks[~np.isnan(peaks)]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["summary"] = np.array([len(peaks), len(passed), passed.mean() if len(passed) else np.nan])
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"passed": len(passed)})


def pipeline() -> Pipeline:
    """The pipeline of this workspace, as config.toml describes it."""
    paths, settings, phases = CONFIG["paths"], CONFIG["pipeline"], CONFIG["phases"]
    return Pipeline(
        [PeakPhase(threshold=phases["peaks"]["threshold"]), SummaryPhase()],
        [phases["peaks"]["active"], phases["summary"]["active"]],
        HERE / paths["workspace"],
        HERE / paths["runs"],
        seed=settings["seed"],
        run_pattern=paths["run_pattern"],
        name=settings["name"],
    )
