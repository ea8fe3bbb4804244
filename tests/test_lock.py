"""The workspace lock: a second pipeline fails fast naming the holder; stale locks are taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultphases import SlowSum, gyre_env, pipeline_module, wait_for
from toyphases import ScalePhase, StatPhase, calls, make_run_files

from gyre import Manifest, Pipeline, WorkspaceLockedError, start_pipeline
from gyre.workspace.layout import host_name
from gyre.workspace.lock import WorkspaceLock, lock_path, read_lock


def test_second_holder_fails_naming_the_first(tmp_path):
    with WorkspaceLock(tmp_path):
        holder = read_lock(tmp_path)
        assert holder["pid"] == os.getpid() and holder["host"] == host_name()
        with pytest.raises(WorkspaceLockedError) as info:
            WorkspaceLock(tmp_path).acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and host_name() in message and holder["started"] in message
    assert not lock_path(tmp_path).exists()
    with WorkspaceLock(tmp_path):  # free again
        pass


def test_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(tmp_path).parent.mkdir(parents=True)
    lock_path(tmp_path).write_text(json.dumps({"host": host_name(), "pid": dead.pid, "started": "yesterday"}))
    with WorkspaceLock(tmp_path) as lock:
        assert read_lock(tmp_path)["token"] == lock.token
    assert f"process {dead.pid} no longer exists" in caplog.text


def test_zombie_and_silent_remote_holders_are_stale_but_live_remote_ones_are_not(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{zombie.pid}/stat")
    wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", 10, "a zombie")
    lock_path(tmp_path).parent.mkdir(parents=True)
    lock_path(tmp_path).write_text(json.dumps({"host": host_name(), "pid": zombie.pid}))
    with WorkspaceLock(tmp_path):
        pass
    zombie.wait()
    lock_path(tmp_path).write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "now"}))
    with pytest.raises(WorkspaceLockedError, match="host elsewhere, pid 1"):
        WorkspaceLock(tmp_path, stale_after=60).acquire()
    old = time.time() - 120
    os.utime(lock_path(tmp_path), (old, old))
    with WorkspaceLock(tmp_path, stale_after=60):
        assert read_lock(tmp_path)["host"] == host_name()


def test_heartbeat_refreshes_the_lock(tmp_path):
    with WorkspaceLock(tmp_path, heartbeat=0.05):
        old = time.time() - 100
        os.utime(lock_path(tmp_path), (old, old))
        wait_for(lambda: time.time() - lock_path(tmp_path).stat().st_mtime < 5, 5, "a heartbeat")


def test_concurrent_pipelines_on_one_workspace(tmp_path):
    runs = tmp_path / "runs"
    make_run_files(runs, [1, 2, 3, 4, 5, 6])
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, runs, delay=0.5)
    command = [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", "--runs", "1-6", "--sync", "--no-display"]
    first = subprocess.Popen(command, env=gyre_env(), start_new_session=True)
    try:
        wait_for(lambda: len(list(Manifest(workspace).records("sum"))) >= 2, 60, "two finished runs")
        pipeline = Pipeline([ScalePhase(), SlowSum(0.0), StatPhase()], [True] * 3, workspace, runs, seed=5)
        started = time.monotonic()
        with pytest.raises(WorkspaceLockedError) as info:
            start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)
        assert time.monotonic() - started < 5
        assert f"pid {first.pid}" in str(info.value) and host_name() in str(info.value)
        os.kill(first.pid, signal.SIGKILL)  # dies holding the lock
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert read_lock(workspace)["pid"] == first.pid
    finished = {record.run for record in Manifest(workspace).records("sum")}
    assert 2 <= len(finished) < 6
    report = start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)  # takes the stale lock over
    assert report.ok
    assert {run for run in report.runs if report.status("sum", run) == "cached"} == finished
    assert all(calls(workspace, "sum").count(run) == 1 for run in finished)
