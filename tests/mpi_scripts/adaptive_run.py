"""Runs the adaptive test job with start_pipeline(cluster="mpi") under mpiexec.

argv: workspace directory, run directory. Only the driver gets past start_pipeline: it
prints one JSON line with the lineage tree and the digests of every artifact.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaptivephases import run_tree


def main(workspace: str, run_dir: str) -> None:
    result = run_tree(Path(workspace), Path(run_dir), cluster="mpi")
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
