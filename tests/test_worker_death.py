"""A worker process killed mid-task: the task is retried elsewhere; one that always kills fails its run only."""

from __future__ import annotations

import cloudpickle
import dask
import faultphases
import pytest
from faultphases import KillingScale
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, calls

from gyre import LocalModel, Manifest, Pipeline, start_pipeline

cloudpickle.register_pickle_by_value(faultphases)


artifacts = artifact_bytes


@pytest.mark.slow
def test_killed_worker_is_replaced_and_killer_task_fails_alone(tmp_path, run_dir):
    phases = [KillingScale(kill_on=(2,)), SumPhase(), StatPhase()]
    reference = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True] * 3, tmp_path / "ref", run_dir, seed=3)
    assert start_pipeline(reference, 1, 6, cluster="sync", disable_display=True).ok

    once = Pipeline(phases, [True] * 3, tmp_path / "once", run_dir, seed=3)
    # LocalModel's nannies restart killed workers; allowed-failures=1: a task may kill one worker
    model = LocalModel(2, dashboard_address=None)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        report = start_pipeline(once, 1, 6, cluster=model, disable_display=True)
    assert calls(tmp_path / "once", "worker-deaths") == [2]
    assert report.ok, report.render()
    assert artifacts(tmp_path / "once") == artifacts(tmp_path / "ref")
    assert Manifest(tmp_path / "once").read("scale", 2).status == "done"

    always = Pipeline([KillingScale(kill_on=(3,), always=True), SumPhase(), StatPhase()], [True] * 3,
                      tmp_path / "always", run_dir, seed=3)  # fmt: skip
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        report = start_pipeline(always, 1, 6, cluster=model, disable_display=True)
    assert report.failed_runs == [3], report.render()
    assert calls(tmp_path / "always", "worker-deaths") == [3, 3]  # allowed-failures=1: two deaths, then given up
    error = report.outcome("scale", 3).error
    assert "worker running phase 'scale' on run 3 died repeatedly" in error
    assert {report.status("stat", run) for run in (1, 2, 5, 6)} == {"done"}
    assert report.status("stat", 3) in ("skipped", "failed")
