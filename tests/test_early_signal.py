"""A SIGTERM in a job's first moments (gyre still loading, MPI ranks not yet up) ends it cleanly with 143.

The moments are found by what the processes have done, not by sleeping: numpy mapped into
every process means gyre's package is loading (its signal handling is installed before that
import; before it, only the interpreter's own start-up, which Python's default ends);
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


def _descendants(pid: int) -> list[int]:
    """``pid`` and the processes below it."""
    found = [pid]
    for each in found:
        try:
            found += [int(p) for p in Path(f"/proc/{each}/task/{each}/children").read_text().split()]
        except OSError:
            continue
    return found


def _loading_gyre(processes: int) -> Callable[[int], bool]:
    """Whether ``processes`` Python processes at or below ``pid`` have numpy mapped (gyre's imports have begun)."""

    def ready(pid: int) -> bool:
        loading = 0
        for each in _descendants(pid):
            try:
                if (
                    "python" in Path(f"/proc/{each}/cmdline").read_text()
                    and "numpy" in Path(f"/proc/{each}/maps").read_text()
                ):
                    loading += 1
            except OSError:
                continue
        return loading >= processes

    return ready


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
    status, text, workspace = _interrupt(tmp_path, [sys.executable], _loading_gyre(1))
    _ended_cleanly(status, text, workspace)


@pytest.mark.mpi
def test_sigterm_to_mpiexec_while_the_ranks_load(tmp_path):
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    command = [str(MPIEXEC), "-n", "4", sys.executable]
    status, text, workspace = _interrupt(tmp_path, command, _loading_gyre(4), "--mpi")
    _ended_cleanly(status, text, workspace)


@pytest.mark.mpi
def test_sigterm_to_mpiexec_while_the_driver_waits_for_its_workers(tmp_path):
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    scheduler_log = tmp_path / "ws" / "log" / "dask-rank0-scheduler.log"
    command = [str(MPIEXEC), "-n", "4", sys.executable]
    status, text, workspace = _interrupt(tmp_path, command, lambda pid: scheduler_log.exists(), "--mpi")
    _ended_cleanly(status, text, workspace)
