"""The detector pipeline inside your own dask graph: every run's chain, then one histogram over all runs.

python examples/detector/graph.py                        # 8 runs, dask's threaded scheduler
python examples/detector/graph.py --scheduler processes  # or sync, or distributed (a LocalCluster)

``gyre.to_delayed`` gives one ``dask.delayed`` object per run; ``theta_histogram`` is an
ordinary delayed function over all of them, so the pipeline and the aggregation are one
graph, computed by one ``dask.compute`` on whichever scheduler you choose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dask
import h5py
import numpy as np
from detector import make_pipeline
from generate import generate_runs

from gyre import RunOutcome, to_delayed


@dask.delayed
def theta_histogram(runs: list[RunOutcome], bins: int = 12) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The polar angle of every fitted track of every complete run, histogrammed; and the runs left out."""
    thetas, left_out = [], []
    for outcome in runs:
        if outcome.result is None:  # a phase failed: the run has no tracks
            left_out.append(outcome.run)
            continue
        with h5py.File(outcome.result.artifacts["tracks"], "r") as tracks:
            thetas.append(tracks["theta"][...])
    counts, edges = np.histogram(np.concatenate(thetas), bins=bins, range=(0.0, np.pi / 2))
    return counts, edges, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gyre's detector pipeline folded into one dask graph")
    parser.add_argument("--workspace", type=Path, default=Path("example-graph-workspace"))
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--mean-events", type=int, default=20)
    parser.add_argument("--scheduler", choices=["sync", "threads", "processes", "distributed"], default="threads")
    args = parser.parse_args(argv)

    run_dir = args.workspace / "runs"
    if not (run_dir / f"run_{args.runs:04d}.h5").exists():
        generate_runs(run_dir, args.runs, mean_events=args.mean_events)
    runs = to_delayed(make_pipeline(args.workspace, run_dir), 1, args.runs)  # run → delayed RunOutcome
    histogram = theta_histogram(list(runs.values()))
    print(f"one graph: {len(dict(histogram.__dask_graph__()))} tasks for {len(runs)} runs")

    if args.scheduler == "distributed":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster):
            (counts, edges, left_out), outcomes = dask.compute(histogram, runs)
    else:
        (counts, edges, left_out), outcomes = dask.compute(histogram, runs, scheduler=args.scheduler)

    for run, outcome in outcomes.items():
        print(f"run {run}: " + ", ".join(f"{phase} {status}" for phase, status in outcome.statuses().items()))
    print("theta [rad]   tracks")
    for low, count in zip(edges[:-1], counts):
        print(f"{low:10.3f}   {count:6d}  " + "#" * int(count))
    note = f"; left out: {left_out}" if left_out else ""
    print(f"{counts.sum()} tracks from {len(runs) - len(left_out)} runs{note}")
    return 0 if not left_out else 1


if __name__ == "__main__":
    sys.exit(main())
