"""One pipeline, unchanged, on every execution model: the same artifacts and the same report."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
from toyphases import ScalePhase, StatPhase, SumPhase

from gyre import ClusterError, LocalModel, Pipeline, SchedulerModel, SyncModel, start_pipeline
from gyre.execution import resolve_model


def run_on(model: object, tmp_path: Path, run_dir: Path, name: str) -> tuple[dict, dict]:
    pipeline = Pipeline(
        [ScalePhase(fail_on=(5,)), SumPhase(), StatPhase()], [True] * 3, tmp_path / name, run_dir, seed=21
    )
    report = start_pipeline(pipeline, 1, 6, cluster=model, disable_display=True)
    statuses = {(o.phase, o.run): o.status for o in report.outcomes}
    data = {}
    for path in sorted((tmp_path / name).glob("*/run_*.h5")):
        with h5py.File(path) as handle:
            data[f"{path.parent.name}/{path.name}"] = {k: handle[k][...].tobytes() for k in handle}
    return statuses, data


@pytest.mark.slow
def test_sync_local_and_scheduler_agree(tmp_path, run_dir):
    from distributed import LocalCluster

    results = {
        "sync": run_on(SyncModel(raise_errors=False), tmp_path, run_dir, "sync"),
        "local": run_on(LocalModel(2), tmp_path, run_dir, "local"),
    }
    scheduler_file = tmp_path / "scheduler.json"  # written by the scheduler itself, as dask-mpi's is
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        dashboard_address=None,
        host="127.0.0.1",
        scheduler_kwargs={"scheduler_file": str(scheduler_file)},
    ) as cluster:
        results["address"] = run_on(cluster.scheduler_address, tmp_path, run_dir, "address")
        results["file"] = run_on(
            SchedulerModel(scheduler_file=scheduler_file, min_workers=2), tmp_path, run_dir, "file"
        )
    statuses, data = results["sync"]
    assert statuses[("scale", 5)] == "failed"
    assert statuses[("stat", 5)] == "skipped"
    assert len(data) == 3 * 4
    for name, (other_statuses, other_data) in results.items():
        assert other_statuses == statuses, name
        assert other_data == data, name


def test_resolve_model_strings(tmp_path):
    assert isinstance(resolve_model("sync"), SyncModel)
    assert isinstance(resolve_model(None, n_procs=3), LocalModel)
    assert resolve_model("tcp://127.0.0.1:8786").address == "tcp://127.0.0.1:8786"
    assert resolve_model(str(tmp_path / "s.json")).scheduler_file == tmp_path / "s.json"
    with pytest.raises(Exception, match="unknown execution model"):
        resolve_model("cloud")


def test_scheduler_file_that_does_not_exist(tmp_path):
    model = SchedulerModel(scheduler_file=tmp_path / "nope.json")
    with pytest.raises(ClusterError, match="does not exist"), model.open():
        pass


def test_scheduler_address_nobody_listens_on():
    model = SchedulerModel(address="tcp://127.0.0.1:9", connect_timeout=2)
    with pytest.raises(ClusterError, match="did not answer at tcp://127.0.0.1:9 within 2 s"), model.open():
        pass


def test_distributed_records_go_to_the_file_and_only_warnings_to_stderr_one_line_each(tmp_path):
    # in a process of its own, as a rank is: in the full suite this pytest process's dask
    # logging can be left routed or closing by earlier tests' in-process clusters
    import subprocess
    import sys

    path = tmp_path / "log" / "dask-rank2-worker.log"
    other = tmp_path / "other.log"
    script = f"""
import logging
from pathlib import Path
import distributed  # its handlers, as a rank has them before its logs are routed
from gyre.execution.logs import route_dask_logs

logger = logging.getLogger("distributed.worker")
before = [list(logging.getLogger(n).handlers) for n in ("distributed", "distributed.client")]
undo = route_dask_logs(Path({str(path)!r}), tag="rank 2 (worker)")
try:
    assert route_dask_logs(Path({str(other)!r})) is not None and not Path({str(other)!r}).exists()
    logger.info("Start worker at: tcp://127.0.0.1:1")
    try:
        raise ConnectionError("heartbeat to the scheduler failed")
    except ConnectionError:
        logger.exception("Failed to communicate with scheduler")
finally:
    undo()
assert [list(logging.getLogger(n).handlers) for n in ("distributed", "distributed.client")] == before
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "rank 2 (worker): ERROR distributed.worker: Failed to communicate with scheduler "
        f"(ConnectionError: heartbeat to the scheduler failed) [details in {path}]"
    ]
    text = path.read_text()
    assert "INFO distributed.worker: Start worker at" in text and "Traceback" in text
