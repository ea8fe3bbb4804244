"""Starts a job without cluster="mpi", as under a careless `mpiexec -n 2 python script.py`.

argv: what to start (pipeline, workflow or stream), a scratch directory (with run files in
``runs/``), the model ("local" or "sync"). Every rank that gets past the start prints a COPY line.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(what: str, scratch: Path, cluster: str) -> None:
    if what == "pipeline":
        from toyphases import ScalePhase

        from gyre import Pipeline, start_pipeline

        pipeline = Pipeline([ScalePhase()], [True], scratch / "ws", scratch / "runs")
        start_pipeline(pipeline, 1, 2, cluster=cluster, disable_display=True)
    elif what == "workflow":
        from gyre import Workflow

        workflow = Workflow("wrong-launch", scratch / "cache")

        @workflow.step
        def double(x: int) -> int:
            return 2 * x

        double(21)
        workflow.run(cluster=cluster)
    else:
        from gyre.stream import Stage, Stream

        with Stream(Stage(abs), cluster=cluster) as stream:
            list(stream.map([-1, -2]))
    print("COPY ran past the start", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
