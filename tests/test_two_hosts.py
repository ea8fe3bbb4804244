"""Two hosts on one machine: workers under ``unshare --uts --mount`` with another host name and their own /dev/shm.

The code that keys on the host, exercised with a real second host name: the shared memory
of a phase, created once per host and removed by the host's last worker (the registry of
compat/spyral/shm.py, here with a gyre phase), and the workspace lock, whose holder on
another host cannot be judged by its process id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import pytest
from hostphases import HostMeshPhase
from test_execution_mpi import MPIEXEC
from toyphases import make_run_files

from gyre import Pipeline, SchedulerModel, WorkspaceLockedError, start_pipeline
from gyre.compat.spyral.shm import registry_dir
from gyre.execution.file_cluster import shut_down_file_cluster
from gyre.workspace.lock import WorkspaceLock

pytestmark = [pytest.mark.slow, pytest.mark.mpi]

OTHER = "gyre-node-b"
#: the host name of the scheduler (rank 0) and the first worker (rank 1); the driver stays on this host
FIRST = "gyre-node-a"
TESTS = Path(__file__).parent
BIN = Path(sys.executable).parent


def _need_namespaces() -> None:
    if os.geteuid() == 0 and shutil.which("unshare") is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("the two-host tests need root and unshare (util-linux)")
    pytest.skip("a second host name needs root and unshare (util-linux)")


def _on_other_host(command: str) -> list[str]:
    """``command`` (shell) as host OTHER, with a /dev/shm of its own."""
    setup = f"mount -t tmpfs tmpfs /dev/shm && hostname {OTHER}"
    return ["unshare", "--uts", "--mount", "sh", "-c", f"{setup} && {command}"]


def _finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{process.args} did not end:\n{out}\n{err[-3000:]}")
    return process.returncode, out, err


def test_each_hosts_workers_attach_their_own_shared_memory_and_clean_it_up(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="gyre")
    _need_namespaces()
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    run_dir = tmp_path / "runs"
    make_run_files(run_dir, list(range(1, 13)))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    scheduler_file = tmp_path / "scheduler-9.json"
    credentials = scheduler_file.with_suffix(".pem")
    segment = f"gyre-test-mesh-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env, "start_new_session": True}
    # the first host: the scheduler (rank 0) and one worker (rank 1), with TLS
    start = (
        f"hostname {FIRST} && exec {MPIEXEC} -n 2 {BIN / 'gyre'} cluster --scheduler-file {scheduler_file} "
        f"--log-dir {workspace / 'log'} --dashboard-address 127.0.0.1:0"
    )
    cluster = subprocess.Popen(["unshare", "--uts", "sh", "-c", start], **popen)
    other = None
    try:
        model = SchedulerModel(scheduler_file=scheduler_file, min_workers=3, timeout=90)
        for _ in range(240):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            assert cluster.poll() is None, cluster.communicate()
            subprocess.run(["sleep", "0.25"], check=True)
        # the other host: two workers, joined with the credentials next to the scheduler file
        registry = f"/dev/shm/gyre-spyral-shm-{os.getuid()}.json"
        worker = (
            f"{BIN / 'dask'} worker --scheduler-file {scheduler_file} --nworkers 2 --nthreads 1 --no-dashboard "
            f"--tls-ca-file {credentials} --tls-cert {credentials} --tls-key {credentials} --death-timeout 60; "
            f"echo SHM $(ls /dev/shm); echo REGISTRY $(cat {registry} 2>/dev/null || echo '{{}}')"
        )
        other = subprocess.Popen(_on_other_host(worker), **popen)
        pipeline = Pipeline([HostMeshPhase(segment)], [True], workspace, run_dir, seed=3)
        report = start_pipeline(pipeline, 1, 12, cluster=model, disable_display=True)
        assert report.ok, report.summary()
    finally:
        shut_down_file_cluster(scheduler_file)
        status, _, err = _finish(cluster)
        other_status, other_out, other_err = _finish(other) if other is not None else (0, "", "")
    assert status == 0, err[-3000:]
    assert other_status == 0, other_err[-3000:]
    ran = {}
    for path in sorted((workspace / "mesh").glob("run_*.h5")):
        with h5py.File(path) as handle:
            ran[path.name] = (handle.attrs["host"], handle.attrs["segment_host"], int(handle.attrs["pid"]))
    assert len(ran) == 12
    here = FIRST
    assert {host for host, _, _ in ran.values()} == {here, OTHER}, ran
    # every run read the segment its own host created: the other host's workers did not see this one's
    assert all(host == creator for host, creator, _ in ran.values()), ran
    # created once per host, although two worker processes of the other host used it
    assert len((workspace / f"created-on-{here}.txt").read_text().split()) == 1
    assert len((workspace / f"created-on-{OTHER}.txt").read_text().split()) == 1
    assert len({pid for host, _, pid in ran.values() if host == OTHER}) >= 1
    # the manifest records where each run was made
    manifest = [json.loads(line) for line in (workspace / ".gyre" / "manifest" / "mesh.jsonl").read_text().splitlines()]
    assert {record["host"] for record in manifest if "host" in record} == {here, OTHER}
    # and both hosts' last workers removed their segment and its registry entry
    assert not (registry_dir() / segment).exists()
    registry_here = registry_dir() / f"gyre-spyral-shm-{os.getuid()}.json"
    if registry_here.exists():
        assert not any(key.startswith(segment) for key in json.loads(registry_here.read_text()))
    shm_line = next(line for line in other_out.splitlines() if line.startswith("SHM"))
    assert segment not in shm_line, other_out
    registry_line = next(line for line in other_out.splitlines() if line.startswith("REGISTRY"))
    assert segment not in registry_line, other_out
    assert not scheduler_file.exists() and not credentials.exists()
    # the driver, on a third host name, says where the scheduler's dashboard is and how to get there
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gyre.watch")]
    assert any(line.startswith(f"dask dashboard on {FIRST} at ") for line in lines), lines
    assert any(f"-J <login-node> {FIRST}," in line for line in lines), lines


def test_a_lock_held_on_another_host_is_judged_by_its_heartbeat_not_by_its_pid(tmp_path):
    _need_namespaces()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    # held here by a process that then dies without releasing it (a killed job)
    take = f"from gyre.workspace.lock import WorkspaceLock; WorkspaceLock({str(workspace)!r}).acquire()"
    holder = subprocess.run(
        [sys.executable, "-c", take],
        capture_output=True,
        text=True,
        check=False,
    )
    assert holder.returncode == 0, holder.stderr
    attempt = (
        f'{sys.executable} -c "from gyre.workspace.lock import WorkspaceLock; from gyre import WorkspaceLockedError\n'
        f"try:\n    WorkspaceLock({str(workspace)!r}, stale_after=3600).acquire()\n"
        f"except WorkspaceLockedError as exc:\n    print('REFUSED', exc)\nelse:\n    print('TAKEN')\""
    )
    done = subprocess.run(_on_other_host(attempt), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # the other host cannot know that pid is dead: the lock is refused, naming this host
    assert done.stdout.startswith("REFUSED"), done.stdout
    assert socket.gethostname() in done.stdout
    # here, the dead pid is seen at once and the lock taken over
    with WorkspaceLock(workspace, stale_after=3600):
        pass
    with pytest.raises(WorkspaceLockedError), WorkspaceLock(workspace), WorkspaceLock(workspace):
        pass
