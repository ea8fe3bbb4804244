"""What ctx.progress costs: a phase doing 100,000 small units of real work, with and without an update per unit.

Both variants run on the same local cluster of two worker processes, interleaved (with, without,
without, with, ...), each pipeline computing two runs at once (one per worker). The time is
measured inside the phase as CPU time of the task's thread (``time.thread_time``), so neither
scheduling nor other processes competing for the cores enter it (wall times are shown too);
the figure is the overhead of the median with-progress run over the median without-progress
run. A last line measures the bare cost of one ``update()`` in this process. The progress events are
really sent (to the driver, through the scheduler), and their count is shown.

    python benchmarks/progress_overhead.py [--units 100000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, RunContext, Schema, start_pipeline


class EventLoopPhase(Phase):
    """Per event: baseline-subtract a 512-sample trace, take its peak and energy; optionally report progress."""

    name = "events"
    incoming_schema = Schema({"signal": "float64"})
    outgoing_schema = Schema({})

    def __init__(self, units: int, report: bool) -> None:
        super().__init__()
        self.units = units
        self.report = report

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        trace = ctx.rng.normal(size=512)
        progress = ctx.progress
        progress.set_total(self.units)
        energy = 0.0
        started, cpu_started = time.perf_counter(), time.thread_time()
        if self.report:
            for _ in range(self.units):
                centred = trace - trace.mean()
                energy += float(np.abs(centred).max()) + float(centred @ centred)
                progress.update()
        else:
            for _ in range(self.units):
                centred = trace - trace.mean()
                energy += float(np.abs(centred).max()) + float(centred @ centred)
        cpu = time.thread_time() - cpu_started
        seconds = time.perf_counter() - started
        return PhaseResult({}, run=ctx.run, metadata={"cpu": cpu, "seconds": seconds, "energy": energy})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=100_000, help="units of work (and updates) per run")
    parser.add_argument("--repeats", type=int, default=9, help="pipelines per variant, interleaved")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from gyre.watch.terminal import TerminalDisplay

    events = 0
    original = TerminalDisplay.run_progress

    def counting(self: TerminalDisplay, message: dict) -> None:
        nonlocal events
        events += 1
        original(self, message)

    TerminalDisplay.run_progress = counting  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "runs").mkdir()
        for run in (1, 2):
            with h5py.File(root / "runs" / f"run_{run:04d}.h5", "w") as handle:
                handle.create_dataset("signal", data=np.zeros(8))
        times: dict[bool, list[float]] = {True: [], False: []}
        walls: dict[bool, list[float]] = {True: [], False: []}
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            order = [True, False] * args.repeats
            for index, report in enumerate(order if args.repeats % 2 else order[::-1]):
                if index % 4 in (2, 3):  # alternate which variant goes first in each pair
                    report = not report
                pipeline = Pipeline(
                    [EventLoopPhase(args.units, report)], [True], root / f"ws-{index}", root / "runs", seed=1
                )
                result = start_pipeline(pipeline, 1, 2, client=client, disable_display=True)
                assert result.ok, result.summary()
                times[report] += [float(o.result.metadata["cpu"]) for o in result.outcomes if o.result]
                walls[report] += [float(o.result.metadata["seconds"]) for o in result.outcomes if o.result]

    with_progress = statistics.median(times[True])
    without = statistics.median(times[False])
    overhead = 100 * (with_progress / without - 1)
    wall_overhead = 100 * (statistics.median(walls[True]) / statistics.median(walls[False]) - 1)
    per_update = (with_progress - without) / args.units * 1e9
    print(f"progress overhead: {args.units} units per run, 2 runs per pipeline, {args.repeats} pipelines per variant")
    print(f"  without ctx.progress  : median {without:.3f} s CPU per run ({len(times[False])} runs)")
    print(f"  with update() per unit: median {with_progress:.3f} s CPU per run ({len(times[True])} runs)")
    print(f"  overhead: {overhead:+.2f} % CPU ({per_update:+.0f} ns per update)")
    print(f"  wall-clock medians: {wall_overhead:+.2f} % (noisy: other processes share the cores)")
    print(f"  {events} progress events reached the driver")
    print(f"  bare update() in this process: {_bare_update_ns():.0f} ns per call")
    print(f"  target: under 2 % -> {'OK' if overhead < 2 else 'EXCEEDED'}")


def _bare_update_ns(calls: int = 1_000_000) -> float:
    """The best of five: a loop of update() calls minus an empty loop, per call."""
    from gyre.progress import ProgressReporter

    reporter = ProgressReporter("p", 1, lambda message: None)
    best = float("inf")
    for _ in range(5):
        update = reporter.update
        started = time.perf_counter()
        for _ in range(calls):
            update()
        loop = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(calls):
            pass
        empty = time.perf_counter() - started
        best = min(best, (loop - empty) / calls * 1e9)
    return best


if __name__ == "__main__":
    main()
