"""The gyre command, run as a user runs it: a real subprocess per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pydot
import pytest
from toyphases import make_run_files

GYRE = [sys.executable, "-m", "gyre.cli"]

PIPELINE_FILE = """
import h5py
from gyre import Phase, PhaseResult, Pipeline, Schema

HERE = __file__.rsplit("/", 1)[0]


class Double(Phase):
    name = "double"
    incoming_schema = Schema({"signal": "float64"})

    def __init__(self, fail_on=()):
        super().__init__()
        self.fail_on = tuple(fail_on)

    def run(self, payload, ctx):
        if ctx.run in self.fail_on:
            raise RuntimeError(f"detector off in run {ctx.run}")
        with h5py.File(payload.artifacts["run"]) as f:
            data = f["signal"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["doubled"] = 2 * data
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class Total(Phase):
    name = "total"

    def run(self, payload, ctx):
        with h5py.File(payload.artifacts["double"]) as f:
            total = f["doubled"][...].sum()
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out["total"] = total
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def pipeline():
    return Pipeline([Double(), Total()], [True, True], HERE + "/ws", HERE + "/runs", seed=3)


def failing():
    return Pipeline([Double(fail_on=[2]), Total()], [True, True], HERE + "/ws", HERE + "/runs", seed=3)


not_a_pipeline = 42
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "analysis.py").write_text(PIPELINE_FILE)
    make_run_files(tmp_path / "runs", [1, 2, 3])
    return tmp_path


def gyre(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run([*GYRE, *args], cwd=cwd, capture_output=True, text=True, timeout=240, env=env)


@pytest.mark.slow
def test_run_exit_codes(project):
    ok = gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--procs", "2", "--no-display", cwd=project)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((project / "ws/report.json").read_text())["ok"] is True
    one_failed = gyre("run", "analysis.py:failing", "--runs", "1-3", "--sync", "--no-display", cwd=project)
    # --sync raises into the caller: the exception and a non-zero exit
    assert one_failed.returncode != 0
    assert "detector off in run 2" in one_failed.stderr
    isolated = gyre("run", "analysis.py:failing", "--runs", "1-3", "--procs", "2", "--no-display", cwd=project)
    assert isolated.returncode == 1
    assert "2/3 runs complete, 1 failed (runs 2)" in isolated.stderr


def test_bad_pipeline_specs_exit_2(project):
    for spec, message in [
        ("analysis.py", "use path/to/module.py:name"),
        ("nowhere.py:pipeline", "does not exist"),
        ("analysis.py:missing", "has no 'missing'"),
        ("analysis.py:not_a_pipeline", "not a gyre.Pipeline"),
        ("no_such_package.module:x", "cannot import module"),
    ]:
        done = gyre("validate", spec, cwd=project)
        assert done.returncode == 2, (spec, done.stderr)
        assert message in done.stderr, (spec, done.stderr)


def test_bad_run_ranges(project):
    reversed_range = gyre("run", "analysis.py:pipeline", "--runs", "3-1", cwd=project)
    assert reversed_range.returncode == 2
    assert "reversed" in reversed_range.stderr
    no_runs = gyre("run", "analysis.py:pipeline", "--runs", "50-60", "--sync", cwd=project)
    assert no_runs.returncode == 2
    assert "no run file of runs 50-60" in no_runs.stderr
    not_a_range = gyre("run", "analysis.py:pipeline", "--runs", "a-b", cwd=project)
    assert not_a_range.returncode == 2


def test_validate_is_a_dry_run(project):
    done = gyre("validate", "analysis.py:pipeline", "--runs", "1-4", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "double" in done.stdout and "compute" in done.stdout
    assert "runs 1-4: 3 found, 1 missing" in done.stdout
    assert not (project / "ws" / "report.json").exists()


def test_graph_is_valid_dot(project):
    done = gyre("graph", "analysis.py:pipeline", "--runs", "1-3", "--format", "dot", cwd=project)
    assert done.returncode == 0, done.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pydot's use of pyparsing, not ours
        (graph,) = pydot.graph_from_dot_data(done.stdout)
    names = {node.get_name().strip('"') for node in graph.get_nodes()}
    assert {"double-1", "total-3", "run-2"} <= names
    assert len(graph.get_edges()) == 3 * 2


@pytest.mark.slow
def test_init_then_run_the_template(tmp_path):
    done = gyre("init", str(tmp_path / "new"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("pipeline.py", "config.toml", "slurm_mpi.sbatch", "slurm_scheduler_file.sbatch"):
        assert (tmp_path / "new" / name).exists(), name
    again = gyre("init", str(tmp_path / "new"), cwd=tmp_path)
    assert again.returncode == 2
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "detector"))
    try:
        from generate import generate_runs
    finally:
        sys.path.pop(0)
    generate_runs(tmp_path / "new" / "runs", 3, mean_events=4)
    run = gyre("run", "new/pipeline.py:pipeline", "--runs", "1-3", "--procs", "2", "--no-display", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "new/workspace/summary").glob("run_*.h5"))) == 3
