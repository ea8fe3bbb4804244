"""gyre.compat.spyral pieces that need no Spyral: progress queue, shared memory registry, schemas, messages."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import uuid
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cloudpickle
import numpy as np
import pytest

from gyre import ConfigError, Phase, PhaseResult, ProgressReporter
from gyre.compat.spyral import (
    SharedMemoryConflict,
    SpyralPhase,
    SpyralSchema,
    StatusQueue,
    claim_segments,
    remove_stale_segments,
)
from gyre.compat.spyral.bridge import describe_failure
from gyre.compat.spyral.shm import _paths
from gyre.job.shared import clear_shared, load_shared

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _creator(segment: str, counter: Path) -> Any:
    def create(handles: dict[str, SharedMemory]) -> None:
        with open(counter, "a") as log:
            log.write("x\n")
        handle = SharedMemory(name=segment, create=True, size=80)
        np.ndarray((10,), dtype=float, buffer=handle.buf)[:] = np.arange(10.0)
        handles[handle.name] = handle

    return create


def _segment_exists(segment: str) -> bool:
    return Path(f"/dev/shm/{segment}").exists()


def test_import_gyre_does_not_import_spyral() -> None:
    code = "import sys, gyre, gyre.compat.spyral; print('spyral' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_spyral_phase_rejects_what_is_not_a_phaselike() -> None:
    with pytest.raises(ConfigError, match="not a Spyral PhaseLike"):
        SpyralPhase(object())


def test_status_messages_become_progress() -> None:
    sent: list[dict[str, Any]] = []
    reporter = ProgressReporter("Cluster", 3, sent.append, interval=0.0)
    queue = StatusQueue(reporter)
    for _ in range(4):
        queue.put(SimpleNamespace(phase="Cluster", increment=1, total=4, run=3))
    queue.put(SimpleNamespace(phase="Complete", increment=0, total=0, run=-1))
    assert (reporter.completed, reporter.total, queue.messages) == (4, 4, 5)
    assert sent[-1] == {"phase": "Cluster", "run": 3, "completed": 4, "total": 4}
    assert queue.empty()


def _claim_in_worker(key: str, segment: str, counter: str, registry: str, dask_worker: Any = None) -> int:
    claim = claim_segments(key, _creator(segment, Path(counter)), workspace=Path(registry), directory=Path(registry))
    dask_worker._gyre_test_claim = claim
    mesh = SharedMemory(name=segment)
    total = int(np.ndarray((10,), dtype=float, buffer=mesh.buf).sum())
    mesh.close()
    return total


def _release_in_worker(dask_worker: Any = None) -> None:
    dask_worker._gyre_test_claim.release()


def test_two_workers_on_one_host_create_the_segment_once(client: Any, tmp_path: Path) -> None:
    segment = f"gyre_t_{uuid.uuid4().hex[:10]}"
    counter = tmp_path / "created.txt"
    sums = client.run(_claim_in_worker, "job1/Mesh", segment, str(counter), str(tmp_path))
    assert sorted(sums.values()) == [45, 45]
    assert counter.read_text().count("x") == 1
    entry = json.loads(_paths(tmp_path)[0].read_text())["job1/Mesh"]
    assert len(entry["pids"]) == 2 and entry["segments"] == [segment]
    client.run(_release_in_worker)
    assert not _segment_exists(segment)
    assert json.loads(_paths(tmp_path)[0].read_text()) == {}


def test_live_owner_is_a_conflict_dead_owner_is_cleaned_foreign_is_left(tmp_path: Path) -> None:
    segment = f"gyre_t_{uuid.uuid4().hex[:10]}"
    counter = tmp_path / "created.txt"
    create = _creator(segment, counter)
    owner = claim_segments("jobA/Mesh", create, workspace=tmp_path / "a", directory=tmp_path)
    with pytest.raises(SharedMemoryConflict, match=r"in use on host .* by another running gyre job \(workspace .*a,"):
        claim_segments("jobB/Mesh", create, workspace=tmp_path / "b", directory=tmp_path)
    assert _segment_exists(segment)
    owner.release()
    assert not _segment_exists(segment)
    # a job whose processes all died: its segment goes on the next look
    claim_segments("jobC/Mesh", create, workspace=tmp_path / "c", directory=tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    entries = json.loads(_paths(tmp_path)[0].read_text())
    entries["jobC/Mesh"]["pids"] = [dead.pid]
    _paths(tmp_path)[0].write_text(json.dumps(entries))
    assert remove_stale_segments(tmp_path) == [segment]
    later = claim_segments("jobD/Mesh", create, workspace=tmp_path / "d", directory=tmp_path)
    assert counter.read_text().count("x") == 4  # A, B (the conflicting attempt), C, D
    later.release()
    # a segment no gyre job registered is never removed
    foreign = SharedMemory(name=segment, create=True, size=16)
    try:
        with pytest.raises(SharedMemoryConflict, match="no running gyre job owns it"):
            claim_segments("jobE/Mesh", create, workspace=tmp_path / "e", directory=tmp_path)
        assert _segment_exists(segment)
    finally:
        foreign.close()
        foreign.unlink()


class _Holder:
    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1


class _HolderPhase(Phase):
    name = "holder"

    def run(self, payload: PhaseResult, ctx: Any) -> PhaseResult:
        return payload

    def shared_data(self, workspace: Path) -> _Holder:
        return _Holder()


def test_clear_shared_releases_what_shared_data_holds(tmp_path: Path) -> None:
    holder = load_shared("tok-release", _HolderPhase(), tmp_path)
    assert clear_shared("tok-release") == 1
    assert holder.released == 1


def test_spyral_schemas_must_be_equal_and_pickle() -> None:
    cluster = SpyralSchema(artifacts={"cluster": {"extension": ".h5", "data": {"cloud": "float"}}})
    same = SpyralSchema(artifacts={"cluster": {"extension": ".h5", "data": {"cloud": "float"}}})
    other = SpyralSchema(artifacts={"cluster": {"extension": ".parquet", "data": {}}, "extra": {}})
    assert cluster.differences(same) == []
    problems = cluster.differences(other)
    assert any("'cluster' is described differently" in p for p in problems)
    assert any("'extra' is expected but not given" in p for p in problems)
    assert pickle.loads(pickle.dumps(cluster)) == cluster
    assert SpyralSchema.from_spyral(None) is None
    assert cluster.file_differences(Path("/nonexistent.h5")) == []


class EstimationPhase:  # named like Spyral's, to match the known-issue table
    name = "Estimation"


def test_failures_name_the_spyral_class_and_known_causes() -> None:
    try:
        raise RuntimeError("cannot write 'Object' datatype to parquet")
    except RuntimeError as exc:
        message = describe_failure(EstimationPhase(), 7, exc)
    assert "Spyral's EstimationPhase ('Estimation'" in message and "raised on run 7" in message
    assert "known bug of attpc-spyral 1.1.2" in message
    assert "test_compat_spyral.py:" in message


def test_hdf5_files_a_phase_left_open_are_closed(tmp_path: Path) -> None:
    import h5py

    from gyre.compat.spyral.bridge import close_left_open

    path = tmp_path / "run_0001.h5"
    left = h5py.File(path, "w")  # what Spyral's phases do: open, write, never close
    left["x"] = np.arange(3)
    assert close_left_open([path, tmp_path / "other.h5"]) == [str(path)]
    assert not left.id.valid
    with h5py.File(path, "r") as handle:
        assert handle["x"][()].tolist() == [0, 1, 2]
