"""A user's own minimal Spyral PhaseLike (progress messages, shared memory, an invalid run, a failing run) on gyre.

    python custom_phase.py OUT_DIR RESULT_JSON

Runs 1..6 (run 4: the phase returns successful=False; run 5: it raises) through gyre with two
worker processes, then checks shared memory bookkeeping: created once per host, removed at
the end, a live owner is a clear conflict, a crashed owner is cleaned up, an unowned segment
is left alone and reported. Writes what it saw as JSON.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from spyral import PhaseLike, PhaseResult, ResultSchema
from spyral.core.status_message import StatusMessage

from gyre import PhaseResult as GyreResult
from gyre import Pipeline, SchemaMismatchError, start_pipeline
from gyre.compat.spyral import SpyralPhase, claim_segments, from_spyral_result, to_spyral_result
from gyre.compat.spyral.shm import _paths

TALLY_SCHEMA = '{"tally": {"extension": ".h5", "data": {"total": "float"}}}'
OTHER_SCHEMA = '{"tally": {"extension": ".parquet", "data": {}}}'
WEIGHTS = np.arange(10.0)


class TallyPhase(PhaseLike):
    """Sums each run's events times the shared weights; reports progress per event."""

    def __init__(self, segment: str) -> None:
        super().__init__("Tally", incoming_schema=None, outgoing_schema=ResultSchema(json_string=TALLY_SCHEMA))
        self.segment = segment
        self.weights_path: Path | None = None

    def create_assets(self, workspace_path: Path) -> bool:
        self.weights_path = self.get_asset_storage_path(workspace_path) / "weights.npy"
        np.save(self.weights_path, WEIGHTS)
        return True

    def create_shared_data(self, workspace_path: Path, handles: dict[str, SharedMemory]) -> None:
        with open(self.get_asset_storage_path(workspace_path) / "created.txt", "a") as log:
            log.write("created\n")
        weights = np.load(self.weights_path)
        handle = SharedMemory(name=self.segment, create=True, size=weights.nbytes)
        np.ndarray(weights.shape, dtype=weights.dtype, buffer=handle.buf)[:] = weights
        handles[handle.name] = handle

    def run(self, payload: PhaseResult, workspace_path: Path, msg_queue: Any, rng: np.random.Generator) -> PhaseResult:
        run = payload.run_number
        if run == 4:
            logging.getLogger("spyral.custom").warning("run 4 has no usable events")
            return PhaseResult.invalid_result(run)
        if run == 5:
            raise ValueError("run 5 is corrupt")
        segment = SharedMemory(name=self.segment)
        weights = np.ndarray(WEIGHTS.shape, dtype=WEIGHTS.dtype, buffer=segment.buf).copy()
        segment.close()
        with h5py.File(payload.artifacts["trace"], "r") as handle:
            events = handle["events"][()]
        for _ in events:
            msg_queue.put(StatusMessage(self.name, 1, len(events), run))
        path = self.get_artifact_path(workspace_path) / f"run_{run:04d}.h5"
        with h5py.File(path, "w") as handle:
            handle["total"] = float(events.sum() * weights.sum())
            handle["draw"] = rng.random()
        return PhaseResult({"tally": path}, True, run)

    def construct_artifact(self, payload: PhaseResult, workspace_path: Path) -> PhaseResult:
        path = self.get_artifact_path(workspace_path) / f"run_{payload.run_number:04d}.h5"
        return PhaseResult({"tally": path}, True, payload.run_number)


class DoublePhase(PhaseLike):
    """Reads the tally and doubles it (a second phase, to see skips after a failure)."""

    def __init__(self, schema: str = TALLY_SCHEMA) -> None:
        super().__init__("Double", incoming_schema=ResultSchema(json_string=schema), outgoing_schema=None)

    def create_assets(self, workspace_path: Path) -> bool:
        return True

    def run(self, payload: PhaseResult, workspace_path: Path, msg_queue: Any, rng: np.random.Generator) -> PhaseResult:
        with h5py.File(payload.artifacts["tally"], "r") as handle:
            total = float(handle["total"][()])
        path = self.get_artifact_path(workspace_path) / f"run_{payload.run_number:04d}.h5"
        with h5py.File(path, "w") as handle:
            handle["double"] = 2 * total
        return PhaseResult({"double": path}, True, payload.run_number)

    def construct_artifact(self, payload: PhaseResult, workspace_path: Path) -> PhaseResult:
        path = self.get_artifact_path(workspace_path) / f"run_{payload.run_number:04d}.h5"
        return PhaseResult({"double": path}, True, payload.run_number)


def make_runs(directory: Path) -> dict[int, float]:
    directory.mkdir(parents=True, exist_ok=True)
    sums = {}
    for run in range(1, 7):
        events = np.arange(run * 5, dtype=float)
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle["events"] = events
        sums[run] = float(events.sum() * WEIGHTS.sum())
    return sums


def summary(report: Any) -> dict:
    return {f"{o.phase}/{o.run}": {"status": o.status, "error": o.error} for o in report.outcomes}


def main(out: Path, result_path: Path) -> None:
    from distributed import Client, LocalCluster

    runs = out / "runs"
    expected = make_runs(runs)
    registry = out / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    segment = f"gyre_test_{uuid.uuid4().hex[:10]}"
    result: dict[str, Any] = {"segment": segment, "expected": {str(k): v for k, v in expected.items()}}

    def pipeline(name: str, double_schema: str = TALLY_SCHEMA) -> Pipeline:
        phases = [SpyralPhase(TallyPhase(segment), shm_registry=registry), SpyralPhase(DoublePhase(double_schema))]
        return Pipeline(phases, [True, True], out / name, runs, seed=5)

    def created(name: str) -> int:
        path = out / name / "Tally_assets" / "created.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0

    gone = lambda: not Path(f"/dev/shm/{segment}").exists()  # noqa: E731

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        report = start_pipeline(pipeline("ws_main"), 1, 6, client=client, disable_display=True)
        workers = {o.worker for o in report.outcomes if o.phase == "Tally" and o.status == "done"}
        totals = {}
        for run in (1, 2, 3, 6):
            with h5py.File(out / "ws_main" / "Tally" / f"run_{run:04d}.h5", "r") as handle:
                totals[str(run)] = [float(handle["total"][()]), float(handle["draw"][()])]
        # each job's progress has its own topic, gyre-progress-<token>
        events = [e[1] for topic, got in client.get_events().items() if topic.startswith("gyre-progress-") for e in got]
        progress = [e for e in events if e.get("phase") == "Tally"]
        result["main"] = {
            "outcomes": summary(report),
            "tally_workers": len(workers),
            "totals": totals,
            "created": created("ws_main"),
            "segment_gone": gone(),
            "registry": json.loads(_paths(registry)[0].read_text()),
            "progress": progress,
        }
        # a live owner (this process, another job) holds the segment: a clear conflict, nothing touched
        owner_phase = _owner(out, segment)
        owner = claim_segments(
            "otherjob/Tally",
            lambda handles, p=owner_phase: p.create_shared_data(out / "owner", handles),
            workspace=out / "other",
            directory=registry,
        )
        report = start_pipeline(pipeline("ws_conflict"), 1, 3, client=client, disable_display=True)
        result["conflict"] = {
            "outcomes": summary(report),
            "created": created("ws_conflict"),
            "segment_kept": not gone(),
        }
        owner.release()
        result["conflict"]["segment_gone_after_owner_release"] = gone()
        # a crashed owner: registered by a process that is dead now -> cleaned up, the job runs
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale_phase = _owner(out, segment)
        stale = claim_segments(
            "crashedjob/Tally",
            lambda handles, p=stale_phase: p.create_shared_data(out / "owner", handles),
            workspace=out / "crashed",
            directory=registry,
        )
        registry_file = _paths(registry)[0]
        entries = json.loads(registry_file.read_text())
        entries["crashedjob/Tally"]["pids"] = [dead.pid]
        registry_file.write_text(json.dumps(entries))
        del stale
        report = start_pipeline(pipeline("ws_stale"), 1, 3, client=client, disable_display=True)
        result["stale"] = {"outcomes": summary(report), "created": created("ws_stale"), "segment_gone": gone()}
        # a segment no gyre job owns: left alone, reported
        foreign = SharedMemory(name=segment, create=True, size=16)
        report = start_pipeline(pipeline("ws_foreign"), 1, 2, client=client, disable_display=True)
        result["foreign"] = {"outcomes": summary(report), "segment_kept": not gone()}
        foreign.close()
        foreign.unlink()
        # same seed, in-process: the same random draws as on two workers
        report = start_pipeline(pipeline("ws_sync"), 1, 3, cluster="sync", disable_display=True)
        draws = {}
        for run in (1, 2, 3):
            with h5py.File(out / "ws_sync" / "Tally" / f"run_{run:04d}.h5", "r") as handle:
                draws[str(run)] = float(handle["draw"][()])
        result["sync_draws"] = draws
    try:
        start_pipeline(pipeline("ws_schema", OTHER_SCHEMA), 1, 2, cluster="sync", disable_display=True)
        result["schema_error"] = None
    except SchemaMismatchError as exc:
        result["schema_error"] = str(exc)
    gyre_result = report.outcome("Tally", 1).result
    spyral_result = to_spyral_result(gyre_result)
    back = from_spyral_result(spyral_result)
    result["roundtrip"] = {
        "spyral_type": type(spyral_result).__module__ + "." + type(spyral_result).__qualname__,
        "equal": dict(back.artifacts) == dict(gyre_result.artifacts) and back.run == 1 and back.successful,
        "first_payload_key": list(to_spyral_result(GyreResult({"run": runs / "run_0001.h5"}, 1)).artifacts),
    }
    result_path.write_text(json.dumps(result, indent=1, default=str))


def _owner(out: Path, segment: str) -> TallyPhase:
    phase = TallyPhase(segment)
    (out / "owner" / "Tally_assets").mkdir(parents=True, exist_ok=True)
    phase.create_assets(out / "owner")
    return phase


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
