"""Runs the three toy phases with start_pipeline(cluster="mpi") under mpiexec.

argv: workspace directory, run directory, seed, and optionally ``tls`` (TLS between the
ranks although they share one host, as across hosts) and the address of the driver's client is
printed too. Only the driver gets past start_pipeline:
it prints one JSON line with the report's essentials and which processes ran the phases.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toyphases import ScalePhase, StatPhase, SumPhase

from gyre import Pipeline, start_pipeline
from gyre.execution.mpi import MPIModel


def main(workspace: str, run_dir: str, seed: int, tls: bool = False) -> None:
    pipeline = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True, True, True], workspace, run_dir, seed=seed)
    model = MPIModel(security=True) if tls else "mpi"
    report = start_pipeline(pipeline, 1, 6, cluster=model, disable_display=True)
    from mpi4py import MPI

    call_dir = Path(workspace) / "calls" / "scale"
    pids = sorted({int(p.name.split("-")[1]) for p in call_dir.iterdir()})
    summary = {
        "ok": report.ok,
        "runs": list(report.runs),
        "execution": report.execution,
        "rank": MPI.COMM_WORLD.Get_rank(),
        "driver_pid": os.getpid(),
        "phase_pids": pids,
    }
    print("RESULT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), tls=sys.argv[4:] == ["tls"])
