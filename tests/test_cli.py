"""The gyre command, run as a user runs it: a real subprocess per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pydot
import pytest
from terminal import Terminal
from toyphases import make_run_files

from gyre import __version__ as gyre_version

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
    assert "2/3 runs complete, 1 failed (run 2)" in isolated.stderr


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
    assert "run files: 3 of 3 hold what phase 'double' needs" in done.stdout
    assert (
        "plan of pipeline 'pipeline'" in done.stdout
        and "runs 1-4: 3 run files, 1 without a file (run 4)" in done.stdout
    )
    assert "  double  compute       3 runs (1-3): not done before" in done.stdout
    assert not (project / "ws").exists()


def test_validate_checks_each_run_file_from_its_metadata(project):
    runs = project / "runs"
    with h5py.File(runs / "run_0004.h5", "w") as handle:
        handle.create_dataset("other", data=np.zeros(3))
    with h5py.File(runs / "run_0005.h5", "w") as handle:
        handle.create_dataset("signal", data=np.zeros(3, dtype=np.int32))
    (runs / "run_0006.h5").write_bytes(b"not hdf5")
    done = gyre("validate", "analysis.py:pipeline", "--runs", "1-6", cwd=project)
    assert done.returncode == 1, done.stderr
    assert "run files: 3 of 6 hold what phase 'double' needs" in done.stdout
    assert f"  run 4 ({runs / 'run_0004.h5'}): dataset 'signal' is missing" in done.stdout
    assert f"  run 5 ({runs / 'run_0005.h5'}): dataset 'signal' is int32, needed float64" in done.stdout
    assert f"  run 6 ({runs / 'run_0006.h5'}): cannot be read as HDF5" in done.stdout
    assert "run 1 (" not in done.stdout


def test_graph_is_valid_dot_coloured_by_the_plan(project):
    done = gyre("graph", "analysis.py:pipeline", "--runs", "1-3", "--format", "dot", cwd=project)
    assert done.returncode == 0, done.stderr
    nodes = _dot_nodes(done.stdout, edges=3 * 2)
    assert {"double-1", "total-3", "run-2"} <= set(nodes)
    assert nodes["double-1"]["fillcolor"] == '"#f4a261"' and "(compute)" in nodes["double-1"]["label"]
    assert gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--sync", "--no-display", cwd=project).returncode == 0
    (project / "ws/total/run_0002.h5").unlink()
    nodes = _dot_nodes(gyre("graph", "analysis.py:pipeline", "--runs", "1-3", cwd=project).stdout, edges=6)
    assert "(cached)" in nodes["double-2"]["label"] and nodes["double-2"]["fillcolor"] == '"#a8d5a2"'
    assert "(stale)" in nodes["total-2"]["label"] and nodes["total-2"]["fillcolor"] == '"#e9c46a"'
    assert "(cached)" in nodes["total-1"]["label"]


def _dot_nodes(text: str, *, edges: int) -> dict[str, dict[str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pydot's use of pyparsing, not ours
        (graph,) = pydot.graph_from_dot_data(text)
    assert len(graph.get_edges()) == edges
    return {node.get_name().strip('"'): node.get_attributes() for node in graph.get_nodes()}


def test_version_procs_and_list(project):
    version = gyre("--version", cwd=project)
    assert version.returncode == 0 and version.stdout.strip() == f"gyre {gyre_version}"
    zero = gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--procs", "0", cwd=project)
    assert zero.returncode == 2 and "--procs 0: give 1 or more worker processes" in zero.stderr
    listing = gyre("list", "analysis.py:failing", cwd=project)
    assert listing.returncode == 0, listing.stderr
    assert "1. double  active  (Double, version 1)" in listing.stdout
    assert "takes  signal: float64" in listing.stdout and 'config {"fail_on": [2]}' in listing.stdout


def test_status_takes_a_pipeline_and_tells_missing_from_stale(project):
    before = gyre("status", "analysis.py:pipeline", cwd=project)
    assert before.returncode == 0 and "no job has run in its workspace" in before.stdout
    assert gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--sync", "--no-display", cwd=project).returncode == 0
    (project / "ws/double/run_0001.h5").unlink()  # deleted: missing, and what was made from it stale
    with open(project / "ws/double/run_0003.h5", "r+b") as handle:  # corrupted: stale, and downstream too
        handle.seek(-8, os.SEEK_END)
        handle.write(b"garbage!")
    for target in ("analysis.py:pipeline", "ws"):
        done = gyre("status", target, cwd=project)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert "  double        1       1       1       0" in lines, done.stdout
        assert "  total         1       2       0       0" in lines, done.stdout
        assert "  double missing: run 1" in lines and "  double stale: run 3" in lines
        assert "  total stale: runs 1,3" in lines
    other = gyre("status", "analysis.py:failing", cwd=project)  # another configuration (fail_on=[2])
    assert other.returncode == 0, other.stderr
    assert "  double        0       2       1       0" in other.stdout.splitlines(), other.stdout
    assert "  double stale for this pipeline: run 2: configuration changed (fail_on: [] → [2])" in other.stdout
    assert "  total stale for this pipeline: run 2: upstream phase 'double' is recomputed" in other.stdout
    provenance = gyre("provenance", "analysis.py:pipeline", "total", "2", cwd=project)
    assert provenance.returncode == 0 and "phase 'total', run 2: done" in provenance.stdout
    plan = gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--dry-run", cwd=project)
    assert plan.returncode == 1
    assert "double  stale         1 run (1): artifact 'double' is missing" in plan.stdout


def test_status_of_a_new_analysis_directory(tmp_path):
    assert gyre("init", "my-analysis", cwd=tmp_path).returncode == 0
    done = gyre("status", "my-analysis", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no job has run in its workspace" in done.stdout


def test_clean_shows_then_removes_a_phase(project):
    assert gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--sync", "--no-display", cwd=project).returncode == 0
    asked = gyre("clean", "analysis.py:pipeline", "--phase", "double", cwd=project)  # stdin is not a terminal
    assert asked.returncode == 1 and "pass --yes" in asked.stderr
    assert "phase 'double': 3 artifact files" in asked.stdout and "3 records in" in asked.stdout
    assert "later phases (total) will be recomputed" in asked.stdout
    assert len(list((project / "ws/double").glob("*.h5"))) == 3
    done = gyre("clean", "analysis.py:pipeline", "--phase", "double", "--yes", cwd=project)
    assert done.returncode == 0, done.stderr
    assert not list((project / "ws/double").glob("*.h5")) and (project / "ws/total/run_0001.h5").exists()
    plan = gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--dry-run", cwd=project)
    assert "double  compute       3 runs (1-3): not done before" in plan.stdout
    assert "total   stale         3 runs (1-3): upstream phase 'double' is recomputed" in plan.stdout
    unknown = gyre("clean", "analysis.py:pipeline", "--phase", "nope", "--yes", cwd=project)
    assert unknown.returncode == 2 and "no phase named 'nope'" in unknown.stderr


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


def test_clean_asks_on_a_terminal(project):
    assert gyre("run", "analysis.py:pipeline", "--runs", "1-3", "--sync", "--no-display", cwd=project).returncode == 0
    command = ["env", f"PYTHONPATH={Path(__file__).parent}", *GYRE, "clean", "analysis.py:pipeline", "--phase", "total"]
    for answer, code, left in (("n", 1, 3), ("y", 0, 0)):
        terminal = Terminal(command, project)
        try:
            terminal.expect(r"phase 'total': 3 artifact files")
            terminal.expect(r"remove them\? \[y/N\] ")
            terminal.send(answer)
            terminal.expect("nothing removed" if answer == "n" else "removed 4 files")
        finally:
            assert terminal.close() == code
        assert len(list((project / "ws/total").glob("run_*.h5"))) == left
