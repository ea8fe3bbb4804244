"""Children submitted as they are requested vs waiting for the parent graph, on uneven runs.

    python benchmarks/adaptive_children.py [--repeats 3] [--long 4.0] [--short 0.2] [--child 0.4]

One long run (``--long`` seconds) and seven short ones (``--short`` s each); every short run
asks for a child refit of ``--child`` s. On a LocalCluster of 2 single-threaded workers
(started before the clock), interleaved in each repeat:

- gyre: ``start_pipeline`` with the phase's ``ctx.spawn``: children run while the long run
  still computes;
- two-pass: the same job with ``max_children=0`` (the requests are refused and recorded),
  then a second ``start_pipeline`` over the requested runs — the way a script does it
  without hosted children;
- ideal: max(total work / 2, longest run).

The phases sleep instead of computing so that the figures measure scheduling, not the CPU
left over by other processes. Prints the medians and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, RunContext, start_pipeline

RUNS = range(1, 9)


class WorkPhase(Phase):
    """Sleeps for the run's duration; asks for a child of ``child`` seconds if ``spawn``."""

    name = "work"

    def __init__(self, durations: dict[int, float], *, spawn: bool, child: float) -> None:
        super().__init__()
        self.durations = durations
        self.spawn = spawn
        self.child = child

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        time.sleep(self.durations[ctx.run])
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("value", data=np.array([ctx.rng.normal()]))
        if self.spawn and ctx.run != 1:
            ctx.spawn("refit", params={"work": {"durations": {ctx.run: self.child}, "spawn": False}})
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long", type=float, default=4.0)
    parser.add_argument("--short", type=float, default=0.2)
    parser.add_argument("--child", type=float, default=0.4)
    args = parser.parse_args(argv)
    durations = {run: args.long if run == 1 else args.short for run in RUNS}
    ideal = max((sum(durations.values()) + args.child * (len(RUNS) - 1)) / 2, args.long)

    from distributed import Client, LocalCluster

    hosted, two_pass = [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        run_dir = Path(tmp) / "runs"
        run_dir.mkdir()
        for run in RUNS:
            with h5py.File(run_dir / f"run_{run:04d}.h5", "w") as handle:
                handle.create_dataset("x", data=np.zeros(10 * (10 - run)))  # run 1 largest: submitted first
        for repeat in range(args.repeats):
            phase = WorkPhase(durations, spawn=True, child=args.child)
            start = time.perf_counter()
            pipeline = Pipeline([phase], [True], Path(tmp) / f"hosted{repeat}", run_dir, seed=1)
            report = start_pipeline(pipeline, 1, 8, client=client, disable_display=True)
            hosted.append(time.perf_counter() - start)
            assert report.ok and sum(c.status == "done" for c in report.children) == 7

            start = time.perf_counter()
            pipeline = Pipeline([phase], [True], Path(tmp) / f"two{repeat}", run_dir, seed=1)
            first = start_pipeline(pipeline, 1, 8, client=client, disable_display=True, max_children=0)
            wanted = sorted(r for c in first.children for r in c.runs)
            second_phase = WorkPhase(dict.fromkeys(wanted, args.child), spawn=False, child=0.0)
            second = Pipeline([second_phase], [True], Path(tmp) / f"two{repeat}-b", run_dir, seed=1)
            start_pipeline(second, 1, 8, client=client, disable_display=True, runs_to_skip=[1])
            two_pass.append(time.perf_counter() - start)
    gyre_s, two_s = statistics.median(hosted), statistics.median(two_pass)
    print(f"runs: 1 × {args.long:g} s + 7 × {args.short:g} s, each short spawns a {args.child:g} s child, 2 workers")
    print(f"ideal     {ideal:6.2f} s")
    print(f"gyre      {gyre_s:6.2f} s   (median of {args.repeats}; gyre/ideal {gyre_s / ideal:.2f})")
    print(f"two-pass  {two_s:6.2f} s   (two-pass/gyre {two_s / gyre_s:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
