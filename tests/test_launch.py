"""start_pipeline end to end on real clusters and real HDF5 files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, calls

from gyre import (
    ClusterError,
    LocalModel,
    Pipeline,
    SchemaMismatchError,
    SyncModel,
    generate_assets,
    start_pipeline,
)


def make(
    tmp_path: Path,
    run_dir: Path,
    *,
    seed: int | None = 11,
    active=(True, True, True),
    name="ws",
    scale: ScalePhase | None = None,
) -> Pipeline:
    phases = [scale or ScalePhase(), SumPhase(), StatPhase()]
    return Pipeline(phases, list(active), tmp_path / name, run_dir, seed=seed)


datasets = artifact_bytes


def test_three_phases_end_to_end(tmp_path, run_dir, client):
    pipeline = make(tmp_path, run_dir)
    report = start_pipeline(pipeline, 1, 6, client=client, disable_display=True)
    assert report.ok
    assert report.runs == (1, 2, 3, 5, 6)
    assert report.missing_runs == (4,)
    for run in report.runs:
        assert report.status("stat", run) == "done"
        assert (tmp_path / "ws" / "stat" / f"run_{run:04d}.h5").exists()
    assert report.status("scale", 4) == "missing"
    saved = json.loads((tmp_path / "ws" / "report.json").read_text())
    assert saved["missing_runs"] == [4]
    assert {r["status"] for r in saved["records"] if r["run"] == 4} == {"missing"}
    assert saved["counts"]["stat"]["done"] == 5
    # shared data: loaded once per worker process, never per task
    assert 1 <= len(calls(tmp_path / "ws", "stat-shared")) <= 2


def test_same_seed_same_bytes_on_one_and_two_workers(tmp_path, run_dir):
    one = start_pipeline(make(tmp_path, run_dir, name="one"), 1, 6, n_procs=1, disable_display=True)
    two = start_pipeline(make(tmp_path, run_dir, name="two"), 1, 6, n_procs=2, disable_display=True)
    assert one.ok and two.ok
    first, second = datasets(tmp_path / "one"), datasets(tmp_path / "two")
    assert first and first == second


def test_sync_model_gives_the_same_bytes(tmp_path, run_dir, client):
    start_pipeline(make(tmp_path, run_dir, name="dist"), 1, 6, client=client, disable_display=True)
    report = start_pipeline(make(tmp_path, run_dir, name="sync"), 1, 6, cluster="sync", disable_display=True)
    assert report.ok
    assert datasets(tmp_path / "dist") == datasets(tmp_path / "sync")


def test_other_seed_other_draws(tmp_path, run_dir, client):
    start_pipeline(make(tmp_path, run_dir, name="a", seed=1), 1, 3, client=client, disable_display=True)
    start_pipeline(make(tmp_path, run_dir, name="b", seed=2), 1, 3, client=client, disable_display=True)
    with h5py.File(tmp_path / "a/scale/run_0002.h5") as a, h5py.File(tmp_path / "b/scale/run_0002.h5") as b:
        assert not np.array_equal(a["scaled"][...], b["scaled"][...])


def test_no_seed_draws_one_and_records_it(tmp_path, run_dir):
    report = start_pipeline(make(tmp_path, run_dir, seed=None), 1, 2, cluster="sync", disable_display=True)
    assert isinstance(report.seed, int)
    assert json.loads((tmp_path / "ws/report.json").read_text())["seed"] == report.seed


def test_inactive_phase_reuses_cached_artifacts_without_calling_it(tmp_path, run_dir, client):
    start_pipeline(make(tmp_path, run_dir), 1, 6, client=client, disable_display=True)
    before = calls(tmp_path / "ws", "scale")
    with h5py.File(tmp_path / "ws/stat/run_0003.h5") as handle:
        first_stats = handle["stats"][...]
    report = start_pipeline(
        make(tmp_path, run_dir, active=(False, True, True)),
        1,
        6,
        client=client,
        disable_display=True,
        force_phases=["sum"],  # unchanged active phases would be cached too
    )
    assert report.ok
    assert calls(tmp_path / "ws", "scale") == before  # not called again
    assert all(report.status("scale", run) == "cached" for run in report.runs)
    assert all(report.status("sum", run) == "done" for run in report.runs)
    with h5py.File(tmp_path / "ws/stat/run_0003.h5") as handle:
        assert np.array_equal(handle["stats"][...], first_stats)


def test_missing_cached_artifact_fails_that_run_only(tmp_path, run_dir, client):
    start_pipeline(make(tmp_path, run_dir), 1, 6, client=client, disable_display=True)
    lost = tmp_path / "ws/scale/run_0002.h5"
    lost.unlink()
    report = start_pipeline(
        make(tmp_path, run_dir, active=(False, True, True)), 1, 6, client=client, disable_display=True
    )
    assert not report.ok
    assert report.failed_runs == [2]
    failure = report.outcome("scale", 2)
    assert failure.error_type == "MissingArtifactError"
    assert "scale" in failure.error and "run 2" in failure.error and str(lost) in failure.error
    assert report.status("sum", 2) == "skipped"
    assert all(report.status("stat", run) == "cached" for run in (1, 3, 5, 6))  # finished work is kept


def test_phase_raising_on_one_run_fails_that_run_only(tmp_path, run_dir, client):
    pipeline = make(tmp_path, run_dir, scale=ScalePhase(fail_on=(3,)))
    report = start_pipeline(pipeline, 1, 6, client=client, disable_display=True)
    assert not report.ok
    assert report.failed_runs == [3]
    assert report.status("scale", 3) == "failed"
    assert report.status("sum", 3) == "skipped" and report.status("stat", 3) == "skipped"
    assert "bad calibration for run 3" in report.outcome("scale", 3).error
    assert sorted(calls(tmp_path / "ws", "sum")) == [1, 2, 5, 6]
    saved = json.loads((tmp_path / "ws/report.json").read_text())
    record = next(r for r in saved["records"] if r["run"] == 3 and r["phase"] == "scale")
    assert record["status"] == "failed" and "bad calibration" in record["error"]
    assert "Traceback" in record["traceback"]
    logs = "".join(p.read_text() for p in (tmp_path / "ws/log").glob("worker-*.log"))
    assert "bad calibration for run 3" in logs
    assert "run 3" in report.render() and "bad calibration" in report.render()


def test_fail_fast_cancels_the_rest(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir, scale=ScalePhase(fail_on=(6,)))
    report = start_pipeline(pipeline, 1, 6, cluster=SyncModel(raise_errors=False), fail_fast=True, disable_display=True)
    assert report.failed_runs == [6]  # run 6 is the largest, so it runs first
    assert calls(tmp_path / "ws", "sum") == []
    assert {report.status("stat", run) for run in report.runs} == {"skipped"}


def test_sync_model_raises_into_the_caller(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir, scale=ScalePhase(fail_on=(2,)))
    with pytest.raises(ValueError, match="bad calibration for run 2"):
        start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)


def test_schema_mismatch_stops_before_any_compute(tmp_path, run_dir, client):
    class Wrong(SumPhase):
        name = "wrong"
        from gyre import Schema

        incoming_schema = Schema({"scaled": "int32"})

    pipeline = Pipeline([ScalePhase(), Wrong(), StatPhase()], [True] * 3, tmp_path / "ws", run_dir)
    with pytest.raises(SchemaMismatchError, match="'wrong' cannot follow phase 'scale'.*int32"):
        start_pipeline(pipeline, 1, 6, client=client, disable_display=True)
    assert calls(tmp_path / "ws", "scale") == []


def test_generate_assets_touches_no_run(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    created = generate_assets(pipeline)
    assert (tmp_path / "ws/stat_assets/weights.npy").exists()
    assert tmp_path / "ws/stat_assets" in created
    assert not list((tmp_path / "ws/scale").iterdir())
    assert calls(tmp_path / "ws", "scale") == []


def test_truncated_run_file_fails_that_run(tmp_path, run_dir, client):
    data = (run_dir / "run_0002.h5").read_bytes()
    (run_dir / "run_0002.h5").write_bytes(data[: len(data) // 3])
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, client=client, disable_display=True)
    assert report.failed_runs == [2]
    error = report.outcome("scale", 2).error
    assert "run_0002.h5" in error and "run 2" in error and "scale" in error
    assert report.status("stat", 1) == "done" and report.status("stat", 3) == "done"


def test_run_file_without_the_needed_dataset(tmp_path, run_dir, client):
    with h5py.File(run_dir / "run_0003.h5", "w") as handle:
        handle.create_dataset("other", data=[1.0])
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, client=client, disable_display=True)
    assert report.failed_runs == [3]
    assert "dataset 'signal' is missing" in report.outcome("scale", 3).error


def test_window_bounds_runs_in_flight(tmp_path, run_dir):
    import gyre.launch as launch
    from gyre.job.submit import Driver

    seen = []
    original = Driver.run

    def spy(self):
        result = original(self)
        seen.append(self.max_in_flight)
        return result

    Driver.run = spy
    try:
        report = launch.start_pipeline(make(tmp_path, run_dir), 1, 6, cluster="sync", window=2, disable_display=True)
    finally:
        Driver.run = original
    assert report.ok and seen == [2]


def test_local_model_rejects_zero_workers():
    with pytest.raises(ClusterError, match="at least 1"):
        LocalModel(0)
