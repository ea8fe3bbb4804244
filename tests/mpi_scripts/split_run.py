"""Runs the split phases with start_pipeline(cluster="mpi") under mpiexec.

argv: workspace directory, run directory. Only the driver gets past start_pipeline: it
prints one JSON line with the report's essentials and the parts of run 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from splitphases import HitsPhase, NoisePhase, TotalPhase

from gyre import Pipeline, start_pipeline


def main(workspace: str, run_dir: str) -> None:
    pipeline = Pipeline([NoisePhase(), HitsPhase(), TotalPhase()], [True] * 3, workspace, run_dir, seed=5)
    report = start_pipeline(pipeline, 1, 6, cluster="mpi", disable_display=True)
    summary = {"ok": report.ok, "parts": len(report.outcome("noise", 1).parts)}
    print("RESULT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
