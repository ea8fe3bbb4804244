"""Spyral's own phases: Spyral's start_pipeline (1 and 2 processes) vs gyre with 2 workers, interleaved.

Run it in the Spyral environment (``bash scripts/spyral_env.sh`` builds ``.venv-spyral``)::

    .venv-spyral/bin/python benchmarks/spyral_compare.py [--runs 6] [--events 15] [--repeats 3]

The runs are simulated with attpc-engine (tests/spyral_scripts/make_data.py); every variant runs
PointcloudPhase (GET traces), ClusterPhase and EstimationPhase (with the user-side fix for
attpc-spyral 1.1.2's parquet bug) over the same runs into a fresh workspace, starting its own
processes (numba compiles in each); gyre runs twice, on its own tuned local cluster and with
dask's default worker settings ("untuned", see gyre.execution.tuning). Prints the median wall
time of each variant and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "spyral_scripts"))

import cloudpickle
import make_data
import spyral_setup
from spyral import start_pipeline as spyral_start

from gyre import LocalModel
from gyre.compat.spyral import start_pipeline as gyre_start

cloudpickle.register_pickle_by_value(spyral_setup)


def run_variant(variant: str, data: Path, workspace: Path, n_runs: int) -> float:
    pipe = spyral_setup.pipeline("full", data, workspace)
    started = time.perf_counter()
    if variant.startswith("gyre-2"):
        # "gyre-2-untuned": dask's default worker settings (no quiet event loop, no core binding)
        model = LocalModel(2, tuned=variant == "gyre-2")
        report = gyre_start(pipe, 1, n_runs, disable_display=True, seed=1, cluster=model)
        if not report.ok:
            raise RuntimeError(report.summary())
    else:
        spyral_start(pipe, 1, n_runs, n_procs=int(variant[-1]), disable_display=True)
        made = len(list((workspace / "Estimation").glob("run_*.parquet")))
        if made != n_runs:
            raise RuntimeError(f"{variant} wrote {made} of {n_runs} Estimation files")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--events", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    variants = ("spyral-1", "spyral-2", "gyre-2", "gyre-2-untuned")
    times: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="gyre-spyral-bench-") as tmp:
        root = Path(tmp)
        make_data.main(root / "data", args.runs, args.events)
        n_runs = len(list((root / "data" / "traces").glob("run_*.h5")))
        for repeat in range(args.repeats):
            for variant in variants:
                seconds = run_variant(variant, root / "data", root / f"{variant}-{repeat}", n_runs)
                times[variant].append(seconds)
                print(f"repeat {repeat + 1}: {variant:14s} {seconds:7.1f} s", file=sys.stderr, flush=True)
    medians = {v: statistics.median(t) for v, t in times.items()}
    print(
        f"\nSpyral phases (Pointcloud+Cluster+Estimation), {n_runs} runs x ~{args.events} events, "
        f"{args.repeats} repeats"
    )
    for variant in variants:
        print(f"  {variant:14s} median {medians[variant]:7.1f} s   ({', '.join(f'{t:.1f}' for t in times[variant])})")
    print(f"  spyral-1 / gyre-2 = {medians['spyral-1'] / medians['gyre-2']:.2f}x")
    print(f"  spyral-2 / gyre-2 = {medians['spyral-2'] / medians['gyre-2']:.2f}x")
    print(f"  spyral-2 / gyre-2-untuned = {medians['spyral-2'] / medians['gyre-2-untuned']:.2f}x")


if __name__ == "__main__":
    main()
