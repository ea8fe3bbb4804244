"""Debugging one (phase, run): ``gyre debug`` in a pseudo-terminal, and ``gyre.debug_task``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import pytest
from terminal import Terminal
from toyphases import make_run_files

import gyre
from gyre import MissingArtifactError, SyncModel, start_pipeline
from gyre.job.seeding import run_generator
from gyre.loader import load_pipeline

PIPELINE_FILE = """
import h5py
import numpy as np
from gyre import Phase, PhaseResult, Pipeline, Schema

HERE = __file__.rsplit("/", 1)[0]


class Smear(Phase):
    name = "smear"
    incoming_schema = Schema({"signal": "float64"})

    def run(self, payload, ctx):
        with h5py.File(payload.artifacts["run"]) as f:
            data = f["signal"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["smeared"] = data + ctx.rng.normal(size=data.size)
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class Fit(Phase):
    name = "fit"

    def run(self, payload, ctx):
        first = ctx.rng.random()
        with h5py.File(payload.artifacts["smear"]) as f:
            data = f["smeared"][...]
        design = np.ones((2, 2)) if ctx.run == 2 else np.eye(2)  # run 2's fit is degenerate
        weights = np.linalg.inv(design) @ np.array([data.mean(), first])
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["weights"] = weights
        return PhaseResult({self.name: ctx.artifact_path()}, run_number=ctx.run)


pipeline = Pipeline([Smear(), Fit()], [True, True], HERE + "/ws", HERE + "/runs", seed=21)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "analysis.py").write_text(PIPELINE_FILE)
    make_run_files(tmp_path / "runs", [1, 2, 3])
    return tmp_path


def job(project: Path):
    return start_pipeline(
        load_pipeline(f"{project / 'analysis.py'}:pipeline"),
        1,
        3,
        cluster=SyncModel(raise_errors=False),
        disable_display=True,
    )


def test_gyre_debug_stops_in_pdb_on_the_real_exception(project):
    report = job(project)
    assert report.status("fit", 2) == "failed" and report.status("fit", 3) == "done"
    smeared = project / "ws/smear/run_0002.h5"
    made = smeared.stat().st_mtime_ns
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    command = [sys.executable, "-m", "gyre.cli", "debug", "analysis.py:pipeline", "--run", "2", "--phase", "fit"]
    terminal = Terminal(["env", *(f"{k}={v}" for k, v in env.items() if k == "PYTHONPATH"), *command], project)
    try:
        terminal.expect(r"LinAlgError: Singular matrix")
        terminal.expect(r"\(Pdb\) ")  # at the line that raised, inside numpy: climb to the phase
        terminal.send("up 2")
        terminal.expect(r"analysis\.py\(\d+\)run\(\)")
        terminal.send("p ctx.run, ctx.phase, repr(first)")
        shown = terminal.expect(r"\(2, 'fit', '([0-9.e-]+)'\)")
        terminal.send("p payload.artifacts['smear'].name")
        terminal.expect(r"'run_0002.h5'")
        terminal.send("q")
        terminal.expect(r"gyre: phase 'fit' failed on run 2: LinAlgError: Singular matrix")
    finally:
        code = terminal.close()
    assert code == 1
    # the same generator as in the job: the recorded seed, the phase and the run
    assert float(shown.group(1)) == run_generator(21, "fit", 2).random()
    assert smeared.stat().st_mtime_ns == made  # the upstream phase was not run again


def test_debug_task_reproduces_the_jobs_artifact(project):
    job(project)
    pipeline = load_pipeline(f"{project / 'analysis.py'}:pipeline")
    path = project / "ws/smear/run_0003.h5"
    with h5py.File(path) as handle:
        made_by_job = handle["smeared"][...].tobytes()
    result = gyre.debug_task(pipeline, phase="smear", run=3, post_mortem=False)
    assert result.path == path
    with h5py.File(path) as handle:
        assert handle["smeared"][...].tobytes() == made_by_job
    with pytest.raises(Exception, match="Singular matrix"):
        gyre.debug_task(pipeline, phase="fit", run=2, post_mortem=False)
    (project / "ws/smear/run_0001.h5").unlink()
    with pytest.raises(
        MissingArtifactError, match="needs the artifact of phase 'smear', but artifact 'smear' is missing"
    ):
        gyre.debug_task(pipeline, phase="fit", run=1, post_mortem=False)
