"""Interruption of the driver (SIGTERM, SIGINT, SIGKILL) as a real subprocess, then resume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultphases import gyre_env, pipeline_module, wait_for
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, calls, make_run_files

from gyre import Manifest, Pipeline, PipelineInterrupted, start_pipeline
from gyre.workspace.lock import lock_path

RUNS = 14


artifacts = artifact_bytes


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """Run files and the artifacts of an uninterrupted run over them."""
    root = tmp_path_factory.mktemp("reference")
    make_run_files(root / "runs", list(range(1, RUNS + 1)), events=2000)
    pipeline = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True] * 3, root / "ws", root / "runs", seed=5)
    assert start_pipeline(pipeline, 1, RUNS, cluster="sync", disable_display=True).ok
    return root / "runs", artifacts(root / "ws")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "where"),
    [(signal.SIGTERM, ["--procs", "2"]), (signal.SIGKILL, ["--procs", "2"]), (signal.SIGINT, ["--sync"])],
    ids=["SIGTERM", "SIGKILL", "SIGINT"],
)
def test_interrupted_driver_resumes_without_recomputing(tmp_path, reference, signum, where):
    runs, expected = reference
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, runs, delay=0.4)
    command = [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", f"--runs=1-{RUNS}", "--no-display"]
    driver = subprocess.Popen([*command, *where], env=gyre_env(), start_new_session=True, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(list(Manifest(workspace).records("stat"))) >= 3, 90, "three finished runs")
        os.kill(driver.pid, signum)
        sent = time.monotonic()
        code = driver.wait(timeout=60)
        stopped_after = time.monotonic() - sent
        stderr = driver.stderr.read().decode() if driver.stderr else ""
    finally:
        if driver.poll() is None or signum == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver.pid, signal.SIGKILL)  # the orphaned workers of a killed driver
        driver.wait()
    finished = {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}
    assert 3 <= len({run for phase, run in finished if phase == "stat"}) < RUNS, "not interrupted partway"

    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert lock_path(workspace).exists()  # left behind, taken over below
    else:
        assert code == 128 + signum, stderr
        assert stopped_after < 30
        assert f"interrupted by {signal.Signals(signum).name}" in stderr and "resume" in stderr
        assert not lock_path(workspace).exists()
        saved = json.loads((workspace / "report.json").read_text())
        assert saved["interrupted"] is True and saved["ok"] is False
        skipped = [r for r in saved["records"] if r["status"] == "skipped"]
        assert skipped and all("interrupted" in r["error"] for r in skipped)
        done = {(r["phase"], r["run"]) for r in saved["records"] if r["status"] == "done"}
        assert done <= finished

    again = subprocess.run([*command, "--procs", "2"], env=gyre_env(), capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    saved = json.loads((workspace / "report.json").read_text())
    cached = {(r["phase"], r["run"]) for r in saved["records"] if r["status"] == "cached"}
    assert cached == finished
    for phase, run in finished:
        assert calls(workspace, phase).count(run) == 1, (phase, run)
    assert all(calls(workspace, phase).count(run) <= 2 for phase in ("scale", "sum", "stat") for run in range(1, 15))
    assert artifacts(workspace) == expected


def test_signal_in_process_writes_the_report_and_raises(tmp_path, run_dir):
    from faultphases import SignallingSum

    from gyre import PipelineInterrupted, SyncModel

    def pipeline():
        phases = [ScalePhase(), SignallingSum(on=3), StatPhase()]
        return Pipeline(phases, [True] * 3, tmp_path / "ws", run_dir, seed=2)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(PipelineInterrupted) as info:
        start_pipeline(pipeline(), 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    assert signal.getsignal(signal.SIGTERM) == before
    assert info.value.exit_code == 143 and isinstance(info.value, KeyboardInterrupt)
    report = info.value.report
    assert report.interrupted and not report.ok and "INTERRUPTED" in report.summary()
    # largest run first: 6 and 5 finished, 3 was running, 2 and 1 never started
    assert [report.status("stat", run) for run in (6, 5)] == ["done", "done"]
    assert report.status("sum", 3) == "skipped" and "interrupted by SIGTERM" in report.outcome("sum", 3).error
    assert report.status("scale", 1) == "skipped"
    assert json.loads((tmp_path / "ws/report.json").read_text())["interrupted"] is True
    assert not lock_path(tmp_path / "ws").exists()
    done = {(r.phase, r.run) for r in Manifest(tmp_path / "ws").records()}
    assert done == {(p, r) for p in ("scale", "sum", "stat") for r in (5, 6)} | {("scale", 3)}

    again = start_pipeline(pipeline(), 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    assert again.ok
    assert sorted(calls(tmp_path / "ws", "scale")) == [1, 2, 3, 5, 6]
    assert sorted(calls(tmp_path / "ws", "stat")) == [1, 2, 3, 5, 6]


@pytest.mark.slow
def test_ctrl_c_on_a_local_cluster_tells_the_story_without_tracebacks(tmp_path, reference):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: the driver and its workers."""
    from joblog import noise, story

    runs, _ = reference
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, runs, delay=0.4)
    command = [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", f"--runs=1-{RUNS}", "--procs", "2"]
    job = subprocess.Popen(
        command, env=gyre_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: len(list(Manifest(workspace).records("stat"))) >= 3, 90, "three finished runs")
        os.killpg(job.pid, signal.SIGINT)
        out, _ = job.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130, out
    assert not noise(out), out
    told = story(out)
    assert [len(told[k]) for k in ("header", "summary", "report")] == [1, 1, 1], out
    assert "gyre: interrupted by SIGINT" in out and "KeyboardInterrupt" not in out, out
    assert json.loads((workspace / "report.json").read_text())["interrupted"] is True
    logs = {p.name for p in (workspace / "log").iterdir()}
    assert "dask-driver.log" in logs and any(name.startswith("dask-worker-") for name in logs), logs


def test_an_interruption_swallowed_where_it_landed_is_raised_again(monkeypatch):
    """A signal whose exception lands in a weakref callback (dropped by Python) still stops the job."""
    import weakref

    from gyre.job.interrupt import AGAIN_AFTER, stop_on_signals

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_value))

    class Thing:
        pass

    def callback(_ref: object) -> None:
        signal.raise_signal(signal.SIGTERM)  # the handler raises here, inside the callback

    with pytest.raises(PipelineInterrupted) as stopped, stop_on_signals():
        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing
        assert ref() is None and len(dropped) == 1 and isinstance(dropped[0], PipelineInterrupted)
        end = time.monotonic() + 10 * AGAIN_AFTER
        while time.monotonic() < end:
            time.sleep(0.01)
    assert stopped.value.signum == signal.SIGTERM


def test_an_interruption_taken_up_is_not_raised_again():
    from gyre.job.interrupt import AGAIN_AFTER, stop_on_signals

    with stop_on_signals():
        try:
            signal.raise_signal(signal.SIGTERM)
        except PipelineInterrupted as exc:
            exc.take()
        time.sleep(3 * AGAIN_AFTER)  # the clean-up: no second raise
