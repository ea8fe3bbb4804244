"""Runs a pipeline whose first phase asks the gyre page for its state, under mpiexec.

argv: workspace directory, run directory, dashboard port. Only the driver gets past
start_pipeline: it prints one JSON line with what the page answered while the job ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toyphases import StatPhase, SumPhase
from watchphases import ProbingScale

from gyre import Pipeline, start_pipeline
from gyre.execution.mpi import MPIModel


def main(workspace: str, run_dir: str, port: int) -> None:
    probe = ProbingScale(f"http://127.0.0.1:{port}/gyre/state.json", probe_run=2)
    pipeline = Pipeline([probe, SumPhase(), StatPhase()], [True, True, True], workspace, run_dir, seed=2)
    report = start_pipeline(pipeline, 1, 6, cluster=MPIModel(dashboard_address=f"127.0.0.1:{port}"))
    seen = json.loads((Path(workspace) / "probe.json").read_text())
    print("RESULT " + json.dumps({"ok": report.ok, "board": seen["board"]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
