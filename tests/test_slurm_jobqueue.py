"""Workers as Slurm jobs (``gyre run --slurm-jobs``, ``SlurmModel``) on a real one-node Slurm.

The driver runs here, as a ``gyre run`` subprocess; its workers are batch jobs of the
session's test Slurm. Each test checks in Slurm itself (``squeue``, ``scontrol``) which worker
jobs ran and that none is left once the driver has ended, however it ended.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultphases import gyre_env, wait_for
from toyphases import make_run_files

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

#: small worker jobs: the test node has 8 declared CPUs on a 2-core machine
SMALL = ["--slurm-memory", "400MB", "--slurm-walltime", "00:05:00"]


def _analysis(tmp_path: Path, n_runs: int, delay: float) -> Path:
    """Run files and a pipeline (scale → a slow sum noting its Slurm job → stat) under ``tmp_path``."""
    make_run_files(tmp_path / "runs", list(range(1, n_runs + 1)), events=100)
    module = tmp_path / "jq_pipeline.py"
    module.write_text(
        "import gyre\n"
        "from faultphases import JobNotingSum\n"
        "from toyphases import ScalePhase, StatPhase\n"
        f"pipeline = gyre.Pipeline([ScalePhase(), JobNotingSum({delay}), StatPhase()], [True] * 3, "
        f"{str(tmp_path / 'ws')!r}, {str(tmp_path / 'runs')!r}, seed=3)\n"
    )
    return module


def _gyre(slurm, tmp_path: Path, n_runs: int, *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "gyre.cli", "run", "jq_pipeline.py:pipeline", f"--runs=1-{n_runs}", "--no-display"]
    env = {**slurm.env, "PYTHONPATH": gyre_env()["PYTHONPATH"]}
    return subprocess.Popen(
        [*command, *options], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str], timeout: float = 150) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def _worker_jobs(slurm, workspace: Path) -> dict[str, dict[str, str]]:
    """The Slurm jobs whose output goes to this workspace's log directory, by id, with their fields."""
    done = slurm.run(["scontrol", "-o", "show", "job"], check=False)
    jobs = {}
    for line in done.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("StdOut", "").startswith(str(workspace / "log")):
            jobs[fields["JobId"]] = fields
    return jobs


def _in_queue(slurm, ids) -> list[str]:
    """Those of the jobs squeue lists; a cancelled job may be listed a few seconds longer, while it completes."""
    deadline = time.monotonic() + 15
    while True:
        listed = [job for job in slurm.queue() if job in set(ids)]
        if not listed or time.monotonic() > deadline:
            return listed
        time.sleep(0.5)


def _noted_jobs(workspace: Path) -> dict[int, set[str]]:
    """Which Slurm jobs the sum phase of each run started in."""
    noted: dict[int, set[str]] = {}
    for marker in (workspace / "jobs").iterdir():
        run, job = marker.name.split("-", 1)
        noted.setdefault(int(run), set()).add(job)
    return noted


def _report(workspace: Path) -> dict:
    return json.loads((workspace / "report.json").read_text())


def test_a_pipeline_runs_on_slurm_worker_jobs(slurm, tmp_path):
    # an adaptive size here; the tests below keep a fixed one
    _analysis(tmp_path, 6, delay=0.3)
    code, output = _finish(_gyre(slurm, tmp_path, 6, "--slurm-jobs", "1:2", *SMALL))
    workspace = tmp_path / "ws"
    assert code == 0, output
    report = _report(workspace)
    assert report["ok"] and len(report["records"]) == 18, output
    assert report["execution"].startswith("slurm (dask-jobqueue: 1 to 2 jobs, adaptive"), report["execution"]
    assert "Traceback" not in output and "INFO" not in output, output  # distributed's records are in the log files
    jobs = _worker_jobs(slurm, workspace)
    assert 1 <= len(jobs) <= 2, jobs
    assert {f["JobName"] for f in jobs.values()} == {"gyre-worker"}
    noted = _noted_jobs(workspace)
    assert sorted(noted) == list(range(1, 7)) and set().union(*noted.values()) <= set(jobs), (noted, jobs)
    assert not _in_queue(slurm, jobs), "worker jobs left in the queue after the driver ended"
    # their output is in the workspace's log directory, nothing in the directory gyre ran from
    assert {f"gyre-worker-{job}.err" for job in jobs} <= {p.name for p in (workspace / "log").iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jq_pipeline.py", "runs", "ws"]
    # the workers ran with the quiet settings
    assert {note.read_text() for note in (workspace / "jobs").iterdir()} == {"1s"}
    assert "Registered to:" in (workspace / "log" / f"gyre-worker-{min(jobs)}.err").read_text()


def test_scancel_of_a_worker_job_retries_its_runs_on_the_others(slurm, tmp_path):
    _analysis(tmp_path, 8, delay=1.5)
    workspace = tmp_path / "ws"
    process = _gyre(slurm, tmp_path, 8, "--slurm-jobs", "2", *SMALL)
    try:
        wait_for(lambda: (workspace / "jobs").exists() and any((workspace / "jobs").iterdir()), 90, "a first run")
        first = next((workspace / "jobs").iterdir()).name
        run, victim = first.split("-", 1)
        slurm.run(["scancel", victim])
        code, output = _finish(process)
    finally:
        process.kill()
    assert code == 0, output
    report = _report(workspace)
    assert report["ok"] and {r["status"] for r in report["records"]} == {"done"}, output
    assert len(report["records"]) == 24
    # the run the cancelled job had in hand was retried, and the report says so
    assert len(_noted_jobs(workspace)[int(run)]) == 2, _noted_jobs(workspace)
    notes = " ".join(report["notes"])
    assert f"(Slurm job {victim}) left with" in notes and f"sum on run {run}" in notes, report["notes"]
    assert f"worker jobs that ended while the pipeline ran, replaced: {victim}" in notes, report["notes"]
    # the cancelled job was replaced: a third worker job, and none left afterwards
    jobs = _worker_jobs(slurm, workspace)
    log = (workspace / "log" / "dask-driver.log").read_text()
    assert len(jobs) == 3 and jobs[victim]["JobState"] == "CANCELLED", f"{jobs}\n{output}\n{log}"
    assert not _in_queue(slurm, jobs)


def test_workers_past_their_lifetime_are_replaced(slurm, tmp_path):
    # six seconds of work for one worker job whose worker leaves after four: at least one replacement
    _analysis(tmp_path, 6, delay=1.0)
    workspace = tmp_path / "ws"
    code, output = _finish(_gyre(slurm, tmp_path, 6, "--slurm-jobs", "1", *SMALL, "--slurm-lifetime", "4s"))
    assert code == 0, output
    report = _report(workspace)
    assert report["ok"] and {r["status"] for r in report["records"]} == {"done"}, output
    jobs = _worker_jobs(slurm, workspace)
    assert len(jobs) >= 2, {job: fields["JobState"] for job, fields in jobs.items()}
    ended = [job for job, fields in jobs.items() if fields["JobState"] == "COMPLETED"]
    assert ended, (
        f"no worker job ended by itself (its workers' lifetime): { {j: f['JobState'] for j, f in jobs.items()} }"
    )
    assert "worker-lifetime-reached" in (workspace / "log" / f"gyre-worker-{ended[0]}.err").read_text()
    replaced = next(note for note in report["notes"] if note.startswith("worker jobs that ended"))
    assert f" {ended[0]} (SLURMCluster-" in replaced, report["notes"]
    assert not _in_queue(slurm, jobs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_driver_leaves_no_worker_job(slurm, tmp_path, signum):
    _analysis(tmp_path, 8, delay=2.0)
    workspace = tmp_path / "ws"
    process = _gyre(slurm, tmp_path, 8, "--slurm-jobs", "2", *SMALL)
    try:
        wait_for(lambda: (workspace / "jobs").exists() and any((workspace / "jobs").iterdir()), 90, "a first run")
        process.send_signal(signum)
        code, output = _finish(process, timeout=60)
    finally:
        process.kill()
    assert code == 128 + signum, output
    assert _report(workspace)["interrupted"] is True
    assert "Traceback" not in output, output
    jobs = _worker_jobs(slurm, workspace)
    assert jobs and not _in_queue(slurm, jobs), (jobs, slurm.queue())


def test_a_driver_that_fails_leaves_no_worker_job(slurm, tmp_path):
    _analysis(tmp_path, 2, delay=0.1)
    workspace = tmp_path / "ws"
    # jobs that may not start for an hour: the driver gives up waiting for a worker
    started = time.monotonic()
    held = ["--slurm-opt=--begin=now+3600", "--slurm-worker-timeout", "5"]
    code, output = _finish(_gyre(slurm, tmp_path, 2, "--slurm-jobs", "2", *SMALL, *held))
    assert code == 2 and "no Slurm worker job started within 5 s" in output, output
    assert "BeginTime" in output or "PENDING" in output, output
    assert time.monotonic() - started < 60
    jobs = _worker_jobs(slurm, workspace)
    assert len(jobs) == 2 and not _in_queue(slurm, jobs), (jobs, slurm.queue())


def test_workers_beyond_the_loopback_reach_the_scheduler_over_tls_only(slurm, tmp_path, monkeypatch):
    from distributed import Client
    from distributed.security import Security

    from gyre import SlurmModel

    for key, value in slurm.env.items():
        if key == "SLURM_CONF":
            monkeypatch.setenv(key, value)
    # an interface named: the scheduler is meant for other hosts, so TLS with the job's own credentials
    model = SlurmModel(1, memory="400MB", walltime="00:05:00", interface="lo")
    model.log_directory = tmp_path / "log"
    with model.open() as engine:
        address = engine.client.scheduler.address
        assert address.startswith("tls://"), address
        assert engine.client.submit(sum, [1, 2]).result() == 3
        credentials = [p for p in (tmp_path / "log").iterdir() if p.name.startswith(".dask-jobqueue.worker")]
        assert credentials and all(p.stat().st_mode & 0o077 == 0 for p in credentials)
        # a client with credentials of its own, or none over plain TCP, is turned away
        for attempt, security in ((address, Security.temporary()), (address.replace("tls://", "tcp://"), None)):
            with pytest.raises((OSError, TimeoutError)):
                Client(attempt, security=security, timeout=3)
    assert not [p for p in (tmp_path / "log").iterdir() if p.name.startswith(".dask-jobqueue.worker")]
    assert not _in_queue(slurm, slurm.queue())


def test_a_driver_in_a_batch_job_of_its_own(slurm, tmp_path):
    # where compute nodes may not reach the login node: the driver is a small job too
    _analysis(tmp_path, 4, delay=0.2)
    script = tmp_path / "driver.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --output=driver-%j.out\n#SBATCH --mem=500M\n"
        f'exec "{sys.executable}" -m gyre.cli run jq_pipeline.py:pipeline --runs=1-4 --slurm-jobs 1 '
        + " ".join(SMALL)
        + "\n"
    )
    driver = slurm.sbatch(script, cwd=tmp_path, env={"PYTHONPATH": gyre_env()["PYTHONPATH"]})
    fields = slurm.wait(driver, timeout=120)
    log = (tmp_path / f"driver-{driver}.out").read_text()
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", f"{fields}\n{log}"
    workspace = tmp_path / "ws"
    assert _report(workspace)["ok"] and "4/4 runs complete" in log, log
    workers = _worker_jobs(slurm, workspace)
    assert len(workers) == 1 and driver not in {int(job) for job in workers}
    assert set().union(*_noted_jobs(workspace).values()) == set(workers)
    assert not _in_queue(slurm, workers)
