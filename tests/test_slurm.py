"""gyre under a real one-node Slurm: the batch scripts of ``gyre init``, walltime and scancel."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultphases import wait_for

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_test_slurm_runs_a_job(slurm, tmp_path):
    script = tmp_path / "hello.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --ntasks=4\nsrun hostname > hosts.txt\necho done\n")
    job = slurm.sbatch(script, "--output=hello-%j.out", cwd=tmp_path)
    fields = slurm.wait(job, timeout=60)
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", fields
    assert (tmp_path / "hosts.txt").read_text().splitlines() == [slurm.node] * 4
    assert (tmp_path / f"hello-{job}.out").read_text() == "done\n"


def _init_analysis(tmp_path: Path, n_runs: int = 10) -> Path:
    """``gyre init`` an analysis directory (with this environment's gyre) and give it ``n_runs`` run files."""
    analysis = tmp_path / "analysis"
    done = subprocess.run(
        [sys.executable, "-m", "gyre.cli", "init", str(analysis)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(EXAMPLES / "detector"))
    try:
        from generate import generate_runs
    finally:
        sys.path.pop(0)
    generate_runs(analysis / "runs", n_runs, mean_events=4)
    return analysis


def _report(analysis: Path) -> dict:
    return json.loads((analysis / "workspace" / "report.json").read_text())


@pytest.mark.parametrize("template", ["slurm_mpi.sbatch", "slurm_scheduler_file.sbatch"])
def test_the_init_templates_run_as_written(slurm, tmp_path, template, capsys):
    analysis = _init_analysis(tmp_path)
    script = analysis / template
    text = script.read_text()
    assert "@ANALYSIS_DIR@" not in text and "@GYRE_ENV@" not in text
    assert f"#SBATCH --chdir={analysis}\n" in text and f'export PATH="{sys.prefix}/bin:$PATH"' in text
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # submitted from another directory, sized on the command line only
    job = slurm.sbatch(script, "--time=00:05:00", "--mem-per-cpu=500M", cwd=elsewhere)
    fields = slurm.wait(job, timeout=150)
    log = analysis / f"gyre-{job}.out"
    assert log.exists(), f"no job log in {analysis}: {sorted(p.name for p in analysis.iterdir())}"
    text = log.read_text()
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", f"{fields}\n{text}"
    report = _report(analysis)
    assert report["ok"] is True and report["interrupted"] is False
    assert {(r["phase"], r["status"]) for r in report["records"]} == {("peaks", "done"), ("summary", "done")}
    assert len(report["records"]) == 20
    assert (analysis / "workspace" / "report.html").exists()
    assert "my-analysis: 10/10 runs complete" in text, text
    assert not list(elsewhere.iterdir()), "the job wrote into the directory sbatch was called from"
    assert not list(analysis.glob("scheduler-*.json")), "the per-job scheduler file is left behind"
    assert not list(analysis.glob("scheduler-*.pem")), "the cluster's TLS credentials are left behind"
    if template == "slurm_scheduler_file.sbatch":
        from joblog import noise

        assert not noise(text), text  # distributed's records are in the per-rank files
        logs = {p.name for p in (analysis / "workspace" / "log").iterdir()}
        assert {"dask-cluster-rank0-scheduler.log", "dask-cluster-rank1-worker.log"} <= logs, logs
        assert "tls://" in (analysis / "workspace" / "log" / "dask-cluster-rank0-scheduler.log").read_text()
    if template == "slurm_mpi.sbatch":
        _check_the_story(text, analysis / "workspace")
        with capsys.disabled():
            print(f"\n--- the job log of {template} ({len(text.splitlines())} lines) ---\n{text}---")


def _check_the_story(text: str, workspace: Path) -> None:
    """A successful MPI job's log: its story, once each, and no distributed INFO line or traceback."""
    from joblog import noise, story

    told = story(text)
    assert [len(told[k]) for k in ("header", "dashboard", "tunnel", "summary", "report")] == [1] * 5, text
    assert told["progress"], text
    assert not noise(text), text
    logs = {p.name for p in (workspace / "log").iterdir()}
    assert {f"dask-rank{r}-{role}.log" for r, role in enumerate(["scheduler", "driver", "worker", "worker"])} <= logs
    assert "Scheduler at:" in (workspace / "log" / "dask-rank0-scheduler.log").read_text()


def test_the_scheduler_file_template_sets_the_quiet_worker_settings():
    from gyre.cli import TEMPLATE
    from gyre.execution.tuning import QUIET_WORKER_CONFIG

    text = (TEMPLATE / "slurm_scheduler_file.sbatch").read_text()
    exported = dict(re.findall(r"^export DASK_(\w+)=(\S+)$", text, flags=re.MULTILINE))
    expected = {
        key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in QUIET_WORKER_CONFIG.items()
    }
    assert expected.items() <= exported.items()
    assert exported["DISTRIBUTED__SCHEDULER__WORKER_SATURATION"] == "1.0"


def test_scancel_of_an_mpi_job_writes_the_report(slurm, tmp_path):
    from faultphases import gyre_env, pipeline_module, wait_for
    from toyphases import make_run_files

    from gyre import Manifest

    make_run_files(tmp_path / "runs", list(range(1, 15)), events=2000)
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, tmp_path / "runs", delay=0.5)
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --ntasks=4\n#SBATCH --output=job-%j.out\n"
        f'exec "{Path(sys.executable).parent}/mpiexec" -n 4 "{sys.executable}" -m gyre.cli run {module}:pipeline '
        "--runs=1-14 --mpi\n"
    )
    job = slurm.sbatch(script, cwd=tmp_path, env={"PYTHONPATH": gyre_env()["PYTHONPATH"]})
    wait_for(lambda: len(list(Manifest(workspace).records("stat"))) >= 3, 90, "three finished runs")
    slurm.run(["scancel", "--batch", "--signal=TERM", str(job)])
    fields = slurm.wait(job, timeout=30)
    log = (tmp_path / f"job-{job}.out").read_text()
    assert fields["ExitCode"] == "143:0" or fields["ExitCode"].startswith("143"), f"{fields}\n{log}"
    report = json.loads((workspace / "report.json").read_text())
    assert report["interrupted"] is True, log
    assert not (workspace / ".gyre" / "lock.json").exists()
    assert "second SIGTERM" not in log, log


#: how each launcher starts the 4 ranks in a batch script (mpiexec of the mpich wheel, or Slurm's
#: srun through its PMI-2 plugin, which the mpich wheel's MPI speaks)
LAUNCHERS = {
    "mpiexec": f'"{Path(sys.executable).parent}/mpiexec" -n 4',
    "srun": "srun --mpi=pmi2",
}
#: the walltime signal for each: to the batch shell (mpiexec, exec'ed, passes it on), or to the
#: tasks (srun answers a SIGTERM of its own by killing its tasks: it must not get it)
WALLTIME_SIGNAL = {"mpiexec": "--signal=B:TERM@20", "srun": "--signal=TERM@20"}


def _slow_job(slurm, tmp_path: Path, launcher: str, *, runs: int, delay: float) -> tuple[Path, Path]:
    """A batch script that runs a slow 3-phase pipeline on 4 ranks with ``launcher``; returns (script, workspace)."""
    from faultphases import pipeline_module
    from toyphases import make_run_files

    directory = tmp_path / launcher
    make_run_files(directory / "runs", list(range(1, runs + 1)), events=500)
    workspace = directory / "ws"
    module = pipeline_module(directory, workspace, directory / "runs", delay=delay, delay_variable="SLOW_SUM_DELAY")
    script = directory / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --ntasks=4\n#SBATCH --output=job-%j.out\n"
        f'exec {LAUNCHERS[launcher]} "{sys.executable}" -m gyre.cli run {module}:pipeline --runs=1-{runs} --mpi\n'
    )
    return script, workspace


def _submit(slurm, script: Path, *options: str, delay: str | None = None) -> int:
    from faultphases import gyre_env

    env = {"PYTHONPATH": gyre_env()["PYTHONPATH"], **({"SLOW_SUM_DELAY": delay} if delay is not None else {})}
    left = slurm.wait_until_no_job_runs()  # one MPI job at a time on this node (see below)
    assert not left, f"processes of an earlier job still running after 30 s: {left}"
    return slurm.sbatch(script, *options, cwd=script.parent, env=env)


def _wait_for_end(slurm, job: int, timeout: float) -> tuple[dict[str, str], float]:
    """Poll until the job ends; returns its fields and the time (``time.time()``) its end was seen."""
    from slurm_cluster import FINAL_STATES

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = slurm.job(job)
        if fields.get("JobState") in FINAL_STATES:
            return fields, time.time()
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not end within {timeout:g} s: {slurm.job(job)}")


def _signalled_at(workspace: Path) -> float:
    """When the driver received its SIGTERM, from the timestamp of its log line (``time.time()`` scale)."""
    for line in (workspace / "log" / "driver.log").read_text().splitlines():
        if "received SIGTERM" in line:
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    raise AssertionError(f"no 'received SIGTERM' in {workspace / 'log' / 'driver.log'}")


def _check_interrupted(slurm, job: int, fields: dict[str, str], workspace: Path) -> set[tuple[str, int]]:
    """The job ended with 143, its report says interrupted, the lock is gone, every done (phase, run) is recorded."""
    from joblog import noise, story

    from gyre import Manifest

    log = (workspace.parent / f"job-{job}.out").read_text()
    assert fields["ExitCode"] == "143:0", f"{fields}\n{log}"
    report = json.loads((workspace / "report.json").read_text())
    assert report["interrupted"] is True and (workspace / "report.html").exists(), log
    assert not (workspace / ".gyre" / "lock.json").exists(), "the lock was left behind"
    assert "second SIGTERM" not in log and "BAD TERMINATION" not in log, log
    assert not noise(log), log
    assert len(story(log)["report"]) == 1 and "interrupted by SIGTERM" in log, log
    done = {(r["phase"], r["run"]) for r in report["records"] if r["status"] == "done"}
    assert done, f"nothing finished before the signal:\n{log}"
    assert done <= {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}
    return done


def _check_resumed(slurm, script: Path, workspace: Path, done: set[tuple[str, int]], *options: str) -> None:
    """The same script submitted again computes none of ``done`` again (and, unless signalled too, completes)."""
    job = _submit(slurm, script, *options, delay="0")
    fields, _ = _wait_for_end(slurm, job, timeout=90)
    log = (script.parent / f"job-{job}.out").read_text()
    assert fields["ExitCode"] in ("0:0", "143:0"), f"{fields}\n{log}"
    records = json.loads((workspace / "report.json").read_text())["records"]
    recomputed = {(r["phase"], r["run"]) for r in records if r["status"] == "done"} & done
    assert not recomputed, f"recomputed after the resubmission: {sorted(recomputed)}"
    assert {(r["phase"], r["run"]) for r in records if r["status"] == "cached"} >= done


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
@pytest.mark.parametrize("stop", ["walltime", "scancel"])
def test_walltime_and_scancel_stop_an_mpi_job_cleanly_and_it_resumes(slurm, tmp_path, capsys, stop, launcher):
    """``--time=1`` and the walltime signal 20 s before the limit, or a plain ``scancel``; then the same job again.

    slurmctld looks at the time limits every 30 s and sends the signal at the first look after
    30 s before it is due: here 10 to 40 s into the job (its pipeline lasts longer), late enough
    for the ranks to be up (a signal due 10 s in came 2 s after the start, before Python was).
    One MPI job at a time: two of them side by side on this one node can fail in ``MPI_Init``
    ("Message truncated") under srun.
    """
    from gyre import Manifest

    options = ("--time=1", WALLTIME_SIGNAL[launcher]) if stop == "walltime" else ()
    runs, delay = (60, 1.5) if stop == "walltime" else (14, 0.5)
    script, workspace = _slow_job(slurm, tmp_path, launcher, runs=runs, delay=delay)
    job = _submit(slurm, script, *options)
    if stop == "scancel":
        wait_for(lambda: len(list(Manifest(workspace).records("stat"))) >= 3, 90, "three finished runs")
        slurm.run(["scancel", str(job)])
    fields, seen = _wait_for_end(slurm, job, timeout=120)
    done = _check_interrupted(slurm, job, fields, workspace)
    seconds = seen - _signalled_at(workspace)
    with capsys.disabled():
        print(f"\n{stop} under {launcher}: {seconds:.1f} s from the driver's SIGTERM to the job's end")
    assert seconds < 10, f"{seconds:.1f} s from SIGTERM to the job's end"
    _check_resumed(slurm, script, workspace, done, *options)


def test_a_job_without_mpi_under_plain_srun_stops_with_one_message(slurm, tmp_path):
    """``srun -n 2`` without an MPI plugin: only Slurm's step variables say there are two ranks."""
    from toyphases import make_run_files

    make_run_files(tmp_path / "runs", [1, 2])
    script = Path(__file__).parent / "mpi_scripts" / "wrong_launch.py"
    done = slurm.run(
        ["srun", "-n", "2", sys.executable, str(script), "pipeline", str(tmp_path), "local"], check=False, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "COPY" not in output, output
    assert output.count('cluster="mpi"') == 1 and "(Slurm: SLURM_STEP_NUM_TASKS=2)" in output, output
    assert not (tmp_path / "ws").exists()
