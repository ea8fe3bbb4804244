"""Seeding, schemas, atomic writes, results and the public surface."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import gyre
from gyre import PhaseResult, Schema
from gyre.job.seeding import run_generator, stable_int
from gyre.progress import ProgressReporter
from gyre.workspace.atomic import atomic_path


def test_generator_depends_only_on_seed_phase_run():
    a = run_generator(5, "clouds", 3).random(4)
    assert np.array_equal(a, run_generator(5, "clouds", 3).random(4))
    assert not np.array_equal(a, run_generator(6, "clouds", 3).random(4))
    assert not np.array_equal(a, run_generator(5, "tracks", 3).random(4))
    assert not np.array_equal(a, run_generator(5, "clouds", 4).random(4))
    assert not np.array_equal(a, run_generator(5, "clouds", 3, lineage=("child-1",)).random(4))
    assert stable_int("clouds") == stable_int("clouds") != stable_int("cloud")


def test_schema_differences_and_dtype_normalisation():
    given = Schema({"x": np.float64, "n": "i8"})
    assert given.datasets == {"x": "float64", "n": "int64"}
    assert given.differences(Schema({"x": "f8"})) == []
    assert given.differences(Schema({"x": None})) == []
    assert "given as int64 but needed as int32" in given.differences(Schema({"n": "int32"}))[0]
    assert pickle.loads(pickle.dumps(given)) == given


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "a" / "run_0001.h5"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"


def test_phase_result():
    result = PhaseResult({"a": "x.h5"}, run=3, metadata={"n": 1})
    assert result.path == Path("x.h5")
    assert pickle.loads(pickle.dumps(result)) == result
    with pytest.raises(ValueError, match="2 artifacts"):
        _ = PhaseResult({"a": "x", "b": "y"}, run=1).path


def test_progress_reporter_throttles():
    sent: list[dict] = []
    reporter = ProgressReporter("p", 1, sent.append, interval=3600)
    reporter.set_total(100_000)
    for _ in range(100_000):
        reporter.update()
    reporter.finish()
    assert len(sent) == 2
    assert sent[-1] == {"phase": "p", "run": 1, "completed": 100_000, "total": 100_000}


def test_all_is_sorted_and_complete():
    assert gyre.__all__ == sorted(gyre.__all__)
    public = {name for name in dir(gyre) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(gyre, name)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(gyre.__all__) - {"__version__"}


def test_import_gyre_starts_nothing():
    import subprocess
    import sys

    code = "import sys, gyre; print('mpi4py' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_failures_that_differ_only_in_run_and_path_make_one_group():
    from gyre.result import Status, TaskOutcome, group_failures

    def failed(phase: str, run: int, message: str) -> TaskOutcome:
        return TaskOutcome(phase, run, Status.FAILED, error=message, error_type="PhaseFailed", traceback=f"tb {run}")

    outcomes = [
        failed("reco", run, f"phase 'reco' raised on run {run}: OSError: truncated (file /d/run_{run:04d}.h5)")
        for run in (9, 4, 2)
    ]
    outcomes += [
        failed("fit", 3, "phase 'fit' raised on run 3: ValueError: chi2 too large: 17.5"),
        failed("fit", 5, "phase 'fit' raised on run 5: KeyError: 'x'"),
        TaskOutcome("fit", 2, Status.SKIPPED, error="skipped: 'reco' failed"),
    ]
    groups = group_failures(outcomes)
    assert [(g.phase, g.runs) for g in groups] == [("reco", (2, 4, 9)), ("fit", (3,)), ("fit", (5,))]
    assert groups[0].message.startswith("phase 'reco' raised on run 2:")
    assert groups[0].tracebacks == {2: "tb 2", 4: "tb 4", 9: "tb 9"}
