"""A SIGTERM in a job's first moments (gyre still loading, MPI ranks not yet up) ends it cleanly with 143.

The moments are found by what the processes have done, not by sleeping: numpy mapped into a
process means gyre's package is loading (its signal handling is installed before that import);
the scheduler rank's log file means the ranks are up and the driver waits for its workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from faultphases import gyre_env, pipeline_module, wait_for
from joblog import noise
from test_execution_mpi import MPIEXEC
from toyphases import make_run_files

pytestmark = pytest.mark.slow


def _loading_gyre(pid: int) -> bool:
    """Whether process ``pid`` or one of its children has numpy mapped (gyre's imports have begun)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
        for child in list(pids[1:]):
            nested = Path(f"/proc/{child}/task/{child}/children")
            if nested.exists():
                pids += [int(p) for p in nested.read_text().split()]
    for each in pids:
        try:
            if "numpy" in Path(f"/proc/{each}/maps").read_text():
                return True
        except OSError:
            continue
    return False


def _interrupt(
    tmp_path: Path, command: list[str], ready: Callable[[int], bool], *options: str
) -> tuple[int, str, Path]:
    make_run_files(tmp_path / "runs", list(range(1, 7)), events=500)
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, tmp_path / "runs", delay=0.3)
    job = subprocess.Popen(
        [*command, "-m", "gyre.cli", "run", f"{module}:pipeline", "--runs=1-6", *options],
        env=gyre_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: ready(job.pid) or job.poll() is not None, 90, "the moment to signal", interval=0.01)
        job.send_signal(signal.SIGTERM)
        out, _ = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.communicate()
    return job.returncode, out.decode(), workspace


def _ended_cleanly(status: int, text: str, workspace: Path) -> None:
    assert status == 143, text
    assert "Traceback" not in text and "BAD TERMINATION" not in text, text
    assert not noise(text), text
    assert not (workspace / ".gyre" / "lock.json").exists(), "the lock is left behind"
    report = workspace / "report.json"
    if report.exists():  # the signal came once the job had started: its report says so
        assert json.loads(report.read_text())["interrupted"] is True


def test_sigterm_while_gyre_loads(tmp_path):
    status, text, workspace = _interrupt(tmp_path, [sys.executable], _loading_gyre)
    _ended_cleanly(status, text, workspace)


@pytest.mark.mpi
def test_sigterm_to_mpiexec_while_the_ranks_load(tmp_path):
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    command = [str(MPIEXEC), "-n", "4", sys.executable]
    status, text, workspace = _interrupt(tmp_path, command, _loading_gyre, "--mpi")
    _ended_cleanly(status, text, workspace)


@pytest.mark.mpi
def test_sigterm_to_mpiexec_while_the_driver_waits_for_its_workers(tmp_path):
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    scheduler_log = tmp_path / "ws" / "log" / "dask-rank0-scheduler.log"
    command = [str(MPIEXEC), "-n", "4", sys.executable]
    status, text, workspace = _interrupt(tmp_path, command, lambda pid: scheduler_log.exists(), "--mpi")
    _ended_cleanly(status, text, workspace)
