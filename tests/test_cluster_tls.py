"""Clusters across hosts: per-job TLS credentials, ``gyre cluster`` behind a scheduler file, stale files refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_execution_mpi import MPIEXEC, mpiexec, result_line
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, make_run_files

from gyre import ClusterError, Pipeline, SchedulerModel, start_pipeline
from gyre.execution.security import credentials_path, load_credentials, make_credentials, write_credentials

pytest.importorskip("cryptography")

GYRE = Path(sys.executable).parent / "gyre"


def test_credentials_are_written_for_the_owner_only_and_read_back(tmp_path):
    credentials = make_credentials()
    path = write_credentials(credentials, credentials_path(tmp_path / "scheduler-7.json"))
    assert path == tmp_path / "scheduler-7.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path) == credentials
    security = credentials.security()
    assert security.require_encryption and security.tls_worker_key == credentials.key
    path.chmod(0o644)
    with pytest.raises(ClusterError, match="can be read by others"):
        load_credentials(path)
    path.chmod(0o600)
    path.write_text("not a key\n")
    with pytest.raises(ClusterError, match="holds no TLS key"):
        load_credentials(path)


def test_a_stale_scheduler_file_is_refused_with_a_message_saying_so(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on any more, like a killed job's scheduler
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stale = tmp_path / "scheduler-41.json"
    stale.write_text(json.dumps({"type": "Scheduler", "address": f"tcp://127.0.0.1:{port}", "services": {}}))
    model = SchedulerModel(scheduler_file=stale, connect_timeout=2, timeout=600)
    with pytest.raises(ClusterError, match=r"did not answer .* within 2 s") as caught, model.open():
        pass
    assert "left over from a job that ended or was killed" in str(caught.value)
    assert str(stale) in str(caught.value)


def test_a_tls_scheduler_file_without_credentials_is_refused(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text(json.dumps({"address": "tls://127.0.0.1:9"}))
    with pytest.raises(ClusterError, match="speaks TLS"), SchedulerModel(scheduler_file=scheduler_file).open():
        pass


@pytest.mark.mpi
def test_forced_tls_under_mpiexec_gives_the_same_artifacts(tmp_path):
    run_dir = tmp_path / "runs"
    make_run_files(run_dir, [1, 2, 3, 5, 6])
    status, out, err, _ = mpiexec(4, "pipeline_run.py", str(tmp_path / "tls"), str(run_dir), "11", "tls")
    assert status == 0, err[-3000:]
    result = result_line(out)
    assert result["ok"] and ", TLS" in result["execution"], result
    scheduler_log = (tmp_path / "tls" / "log" / "dask-rank0-scheduler.log").read_text()
    assert "tls://" in scheduler_log and "tcp://" not in scheduler_log
    reference = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True] * 3, tmp_path / "sync", run_dir, seed=11)
    assert start_pipeline(reference, 1, 6, cluster="sync", disable_display=True).ok
    assert artifact_bytes(tmp_path / "tls") == artifact_bytes(tmp_path / "sync") != {}


# Inside the network namespace: the scheduler of `gyre cluster` on a non-loopback address
# (a veth of the namespace), a client without credentials refused, one with them running the
# pipeline; then the driver shuts the cluster down.
_CLIENT = textwrap.dedent(
    """
    import gc, json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from distributed import Client
    from toyphases import ScalePhase, StatPhase, SumPhase
    from gyre import ClusterError, Pipeline, SchedulerModel, start_pipeline

    scheduler_file, workspace, run_dir = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    address = json.loads(scheduler_file.read_text())["address"]
    refused = []
    from distributed import Security
    attempts = [(address, None), (address, Security.temporary()), (address.replace("tls://", "tcp://"), None)]
    for attempt, security in attempts:  # none, someone else's credentials, plain TCP
        try:
            Client(attempt, timeout=5, security=security).close()
        except (OSError, ValueError, TypeError) as exc:
            refused.append(type(exc).__name__)
        gc.collect()  # a refused Client's __del__ must not run inside the next Client's start
    try:
        SchedulerModel(scheduler_file=scheduler_file, security=False, connect_timeout=5).open().__enter__()
    except ClusterError as exc:
        refused.append("model: " + str(exc)[:60])
    pipeline = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True] * 3, workspace, run_dir, seed=11)
    report = start_pipeline(pipeline, 1, 6, cluster=str(scheduler_file), disable_display=True)
    security = SchedulerModel(scheduler_file=scheduler_file).connection_security()
    with Client(scheduler_file=str(scheduler_file), security=security) as c:
        c.shutdown()
    result = {"address": address, "refused": refused, "ok": report.ok, "summary": report.summary()}
    print("RESULT " + json.dumps(result), flush=True)
    """
)


def _namespace_script(tmp_path: Path, run_dir: Path) -> str:
    scheduler_file = tmp_path / "scheduler-77.json"
    client = tmp_path / "client.py"
    client.write_text(_CLIENT)
    tests = Path(__file__).parent
    return textwrap.dedent(
        f"""
        set -e
        export PYTHONPATH={tests}  # the toy phases, for the scheduler and the workers
        ip link set lo up
        ip link add gyre0 type veth peer name gyre1
        ip addr add 10.231.0.1/24 dev gyre0
        ip link set gyre0 up; ip link set gyre1 up
        {MPIEXEC} -n 3 {GYRE} cluster --scheduler-file {scheduler_file} --interface gyre0 \\
            --log-dir {tmp_path}/ws/log --dashboard-address 127.0.0.1:0 &
        cluster=$!
        for i in $(seq 120); do [ -s {scheduler_file} ] && break; sleep 0.5; done
        stat -c 'MODE %a' {credentials_path(scheduler_file)}
        {sys.executable} {client} {scheduler_file} {tmp_path}/ws {run_dir} {tests}
        wait $cluster
        echo "CLUSTER $?"
        ls {tmp_path}
        """
    )


@pytest.mark.mpi
@pytest.mark.slow
def test_gyre_cluster_on_a_network_address_refuses_clients_without_its_credentials(tmp_path, run_dir):
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root, unshare and ip (iproute2) for a network namespace")
        pytest.skip("a network namespace needs root, unshare and ip (iproute2)")
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    script = _namespace_script(tmp_path, run_dir)
    process = subprocess.Popen(
        ["unshare", "--net", "bash", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"gyre cluster in a network namespace hung:\n{out}\n{err[-3000:]}")
    assert process.returncode == 0, f"{out}\n{err[-3000:]}"
    assert "MODE 600" in out, out
    result = result_line(out)
    assert result["address"].startswith("tls://10.231.0.1:"), result
    assert len(result["refused"]) == 4, result  # none, other credentials, plain TCP, gyre's model without TLS
    assert result["ok"], result
    assert "CLUSTER 0" in out, f"{out}\n{err[-3000:]}"
    assert "scheduler-77" not in out.split("CLUSTER 0", 1)[1], "the scheduler file or its credentials are left behind"
    logs = sorted(p.name for p in (tmp_path / "ws" / "log").iterdir())
    expected = {f"dask-cluster-rank{r}-{role}.log" for r, role in enumerate(["scheduler", "worker", "worker"])}
    assert expected <= set(logs), logs
    assert "INFO" not in err and "Traceback" not in err, err[-3000:]
    reference = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True] * 3, tmp_path / "sync", run_dir, seed=11)
    assert start_pipeline(reference, 1, 6, cluster="sync", disable_display=True).ok
    assert artifact_bytes(tmp_path / "ws") == artifact_bytes(tmp_path / "sync") != {}


class _OneRankWorld:
    """Rank 0 of a world whose broadcasts return what rank 0 sends: enough for the TLS decision."""

    def Get_rank(self) -> int:
        return 0

    def bcast(self, value: object, root: int = 0) -> object:
        return value


def test_mpi_ranks_use_tls_when_they_span_hosts_unless_told_otherwise():
    from gyre.execution.mpi import MPIModel

    cases = {(None, 1): False, (None, 2): True, (True, 1): True, (False, 2): False}
    for (security, n_hosts), expected in cases.items():
        model = MPIModel(security=security)
        model.hosts = ["node1", "node1", *[f"node{i}" for i in range(2, n_hosts + 1)], "node1"]
        credentials = model._credentials(_OneRankWorld())
        assert (credentials is not None) is expected, (security, n_hosts)


def test_insecure_on_the_command_line_turns_tls_off(tmp_path):
    from gyre.cli import _parser
    from gyre.cli.run import _model

    for flag, expected in (([], None), (["--insecure"], False)):
        args = _parser().parse_args(["run", "p.py:p", "--runs", "1-2", "--scheduler-file", "s.json", *flag])
        assert _model(args).security is expected
        args = _parser().parse_args(["run", "p.py:p", "--runs", "1-2", "--mpi", *flag])
        assert _model(args).security is expected


def test_a_tls_cluster_takes_a_client_with_the_credentials_file_and_refuses_others(tmp_path):
    import gc

    from distributed import Client, LocalCluster, Security

    from gyre.execution.security import security_from_file

    credentials = make_credentials()
    path = write_credentials(credentials, tmp_path / "job.pem")
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tls://",
        host="127.0.0.1",
        security=credentials.security(),
        dashboard_address=None,
    ) as cluster:
        security = security_from_file(path)
        assert security.tls_worker_key == str(path)  # the path travels, not the key
        with Client(cluster.scheduler_address, security=security, timeout=10) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        with pytest.raises(OSError):
            Client(cluster.scheduler_address, security=Security.temporary(), timeout=3)
        gc.collect()
