"""The MPI execution model: real ``mpiexec`` jobs (the mpich wheel's, next to this Python)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, make_run_files

from gyre import ClusterError, Pipeline, start_pipeline
from gyre.execution import resolve_model
from gyre.execution.mpi import MPIModel

SCRIPTS = Path(__file__).parent / "mpi_scripts"
MPIEXEC = Path(sys.executable).parent / "mpiexec"
#: no MPI test may take longer than this; a hang fails the test instead of the suite
JOB_TIMEOUT = 90.0


def mpiexec(n: int, script: str, *args: str) -> tuple[int, str, str, float]:
    """Run ``mpiexec -n n python script args``; returns (status, stdout, stderr, seconds)."""
    pytest.importorskip("mpi4py")
    pytest.importorskip("dask_mpi")
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable} (pip install 'gyre[mpi]')")
    command = [str(MPIEXEC), "-n", str(n), sys.executable, str(SCRIPTS / script), *args]
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"mpiexec -n {n} {script} {' '.join(args)} hung for {JOB_TIMEOUT:g} s:\n{err[-3000:]}")
    return process.returncode, out, err, time.monotonic() - start


def result_line(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"expected one RESULT line (from the driver only), got:\n{out}"
    return json.loads(lines[0].removeprefix("RESULT "))


def test_importing_gyre_does_not_import_mpi4py():
    code = "import sys, gyre, gyre.execution.mpi; sys.exit('mpi4py' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_resolve_model_mpi_and_options():
    model = resolve_model("mpi")
    assert isinstance(model, MPIModel)
    assert model.world_size is None
    assert model.n_workers is None
    assert "rank 0 scheduler" in model.describe()
    custom = MPIModel(threads_per_worker=2, memory_limit="2GB", interface="lo", dashboard_address=None)
    assert custom.threads_per_worker == 2
    assert custom.dashboard_address is None
    assert custom.worker_options["dashboard_address"] == "127.0.0.1:0"
    with pytest.raises(ClusterError, match="threads_per_worker"):
        MPIModel(threads_per_worker=0)
    with pytest.raises(ClusterError, match="timeout"):
        MPIModel(worker_timeout=0)


def test_describe_names_world_size_and_rank_zero_host():
    model = MPIModel()
    model.hosts = ["node-a", "node-a", "node-b", "node-b", "node-b"]
    model.dashboard_port = 41234
    text = model.describe()
    assert "5 ranks on 2 hosts" in text
    assert "rank 0 at node-a" in text
    assert "3 workers" in text
    assert "node-a at 127.0.0.1:41234" in text


@pytest.mark.mpi
def test_two_ranks_is_a_clear_error():
    status, out, err, _ = mpiexec(2, "model_run.py", "ok")
    assert status != 0, out + err
    assert "found 2 MPI ranks, needs at least 3" in err, out + err
    assert "mpiexec -n 4" in err, out + err


@pytest.mark.mpi
def test_four_ranks_use_exactly_two_workers_and_only_the_driver_goes_on():
    status, out, err, _ = mpiexec(4, "model_run.py", "ok")
    assert status == 0, err[-3000:]
    result = result_line(out)
    assert result["n_results"] == 20
    assert result["cluster_workers"] == ["2", "3"]
    assert result["workers"] == ["2", "3"]  # both workers took tasks
    assert result["n_threads"] == 2
    assert result["driver_pid"] not in result["worker_pids"]
    assert result["workers_profiling"] == [False, False]  # tuned worker ranks: a quiet event loop
    assert "4 ranks on 1 host" in result["describe"]
    assert result["dashboard"] is None or result["dashboard"].startswith("http://127.0.0.1:")
    # code after the `with` ran on rank 1 only: the other ranks left inside open()
    assert [line for line in out.splitlines() if line.startswith("AFTER")] == ["AFTER rank=1"]


@pytest.mark.mpi
def test_a_raising_driver_ends_the_job_non_zero_within_seconds():
    status, out, err, seconds = mpiexec(4, "model_run.py", "raise")
    assert status != 0
    assert "the driver failed on purpose" in err
    assert "RESULT" not in out
    assert seconds < 30, f"the job took {seconds:.1f} s to end after the driver raised"


@pytest.mark.mpi
def test_a_missing_worker_is_a_clear_error_not_a_hang():
    status, out, err, seconds = mpiexec(4, "model_run.py", "slow-worker")
    assert status != 0, out + err
    # the healthy worker normally joins in time; on a very loaded machine it may miss 3 s too
    assert re.search(r"only [01] of 2 dask workers joined the scheduler within 3 s", err), out + err
    assert seconds < 45


datasets = artifact_bytes


@pytest.mark.mpi
def test_pipeline_under_mpiexec_matches_the_sync_model(tmp_path):
    run_dir = tmp_path / "runs"
    make_run_files(run_dir, [1, 2, 3, 5, 6])
    status, out, err, _ = mpiexec(4, "pipeline_run.py", str(tmp_path / "mpi"), str(run_dir), "11")
    assert status == 0, err[-3000:]
    result = result_line(out)
    assert result["ok"]
    assert result["rank"] == 1
    assert result["runs"] == [1, 2, 3, 5, 6]
    assert result["execution"].startswith("mpi (4 ranks")
    assert result["driver_pid"] not in result["phase_pids"]
    assert 1 <= len(result["phase_pids"]) <= 2
    phases = [ScalePhase(), SumPhase(), StatPhase()]
    reference = Pipeline(phases, [True, True, True], tmp_path / "sync", run_dir, seed=11)
    assert start_pipeline(reference, 1, 6, cluster="sync", disable_display=True).ok
    by_mpi = datasets(tmp_path / "mpi")
    assert by_mpi
    assert by_mpi == datasets(tmp_path / "sync")


@pytest.mark.mpi
def test_the_gyre_page_is_served_by_rank_zero_and_announced_with_its_host(tmp_path, run_dir):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, out, err, _ = mpiexec(4, "watch_run.py", str(tmp_path / "ws"), str(run_dir), str(port))
    assert status == 0, err[-3000:]
    result = result_line(out)
    assert result["ok"]
    board = result["board"]
    assert board["phases"] == ["scale", "sum", "stat"] and board["runs"] == [1, 2, 3, 4, 5, 6]
    assert board["grid"]["scale"][1] == "r"  # run 2 is computing: it is the one asking
    host = socket.gethostname()
    prefixes = ("gyre: dask dashboard", "gyre: gyre page", "gyre: from your own machine")
    announced = [line for line in out.splitlines() if line.startswith(prefixes)]
    assert announced[0] == f"gyre: dask dashboard on {host} (rank 0) at http://127.0.0.1:{port}/status"
    assert announced[1] == f"gyre: gyre page on {host} (rank 0) at http://127.0.0.1:{port}/gyre"
    assert f"ssh -L 8787:127.0.0.1:{port} -J <login-node> {host}" in announced[2]
    assert len(announced) == 3  # once


@pytest.mark.slow
def test_sigterm_to_mpiexec_ends_the_job_cleanly_with_143(tmp_path):
    from faultphases import gyre_env, pipeline_module, wait_for
    from joblog import noise, story
    from toyphases import make_run_files

    from gyre import Manifest

    make_run_files(tmp_path / "runs", list(range(1, 15)), events=2000)
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, tmp_path / "runs", delay=0.5)
    command = [str(MPIEXEC), "-n", "4", sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", "--runs=1-14"]
    job = subprocess.Popen([*command, "--mpi"], env=gyre_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: len(list(Manifest(workspace).records("stat"))) >= 3, 90, "three finished runs")
    job.send_signal(signal.SIGTERM)  # hydra passes it on to every rank
    sent = time.monotonic()
    out, _ = job.communicate(timeout=60)
    seconds = time.monotonic() - sent
    text = out.decode()
    assert job.returncode == 143, text
    assert seconds < 10, seconds
    assert "second SIGTERM" not in text and "BAD TERMINATION" not in text, text
    report = json.loads((workspace / "report.json").read_text())
    assert report["interrupted"] is True and (workspace / "report.html").exists()
    assert not (workspace / ".gyre" / "lock.json").exists()
    done = {(r["phase"], r["run"]) for r in report["records"] if r["status"] == "done"}
    assert done <= {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}
    assert not noise(text), text  # no distributed INFO line and no traceback, on the way out either
    again = subprocess.run([*command, "--mpi"], env=gyre_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not noise(again.stdout + again.stderr), again.stdout + again.stderr
    assert [len(lines) for lines in story(again.stdout).values()] == [1, 1, 1, 1, 1, 1], again.stdout
    resumed = json.loads((workspace / "report.json").read_text())
    cached = {(r["phase"], r["run"]) for r in resumed["records"] if r["status"] == "cached"}
    assert done <= cached, "finished work was recomputed"


@pytest.mark.parametrize(("what", "cluster"), [("pipeline", "local"), ("workflow", "sync"), ("stream", "local")])
def test_a_job_without_cluster_mpi_under_mpiexec_stops_with_one_message(tmp_path, what, cluster):
    from toyphases import make_run_files

    make_run_files(tmp_path / "runs", [1, 2])
    status, out, err, _ = mpiexec(2, "wrong_launch.py", what, str(tmp_path), cluster)
    assert status != 0, out + err
    assert "COPY" not in out, out + err
    assert err.count('cluster="mpi"') == 1 and "on 2 ranks of an MPI launcher (PMI: PMI_SIZE=2)" in err, err
    assert "--mpi" in err
    assert not (tmp_path / "ws").exists() and not list((tmp_path / "cache").glob("**/*.pkl")), "a copy ran"


def test_the_launcher_is_read_from_the_environment():
    from gyre.execution.launcher import LaunchedRank, launched_rank

    assert launched_rank({}) is None
    assert launched_rank({"PMI_RANK": "1", "PMI_SIZE": "4"}) == LaunchedRank("PMI", 1, 4, "PMI_SIZE")
    assert launched_rank({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}).size == 2
    step = {"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4"}
    assert launched_rank(step) == LaunchedRank("Slurm", 3, 4, "SLURM_STEP_NUM_TASKS")
    # a batch script is no step: SLURM_NTASKS of the allocation, no step variables
    assert launched_rank({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"}) is None
    # mpiexec inside a job starts its ranks through srun: the PMI variables say what the rank is
    assert launched_rank({**step, "SLURM_STEP_NUM_TASKS": "1", "PMI_RANK": "2", "PMI_SIZE": "4"}).rank == 2


@pytest.mark.mpi
def test_a_split_run_under_mpiexec_matches_the_unsplit_run(tmp_path):
    from splitphases import HitsPhase, NoisePhase, TotalPhase, make_uneven_runs

    run_dir = tmp_path / "runs"
    make_uneven_runs(run_dir, {1: 2000, 2: 150, 3: 120, 5: 90, 6: 60})
    status, out, err, _ = mpiexec(4, "split_run.py", str(tmp_path / "mpi"), str(run_dir))
    assert status == 0, err[-3000:]
    result = result_line(out)
    assert result["ok"] and result["parts"] > 1
    reference = Pipeline([NoisePhase(), HitsPhase(), TotalPhase()], [True] * 3, tmp_path / "sync", run_dir, seed=5)
    assert start_pipeline(reference, 1, 6, cluster="sync", disable_display=True).ok
    by_mpi = datasets(tmp_path / "mpi")
    assert by_mpi and by_mpi == datasets(tmp_path / "sync")
