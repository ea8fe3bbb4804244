# ruff: noqa: E402
"""Makespan on uneven runs: gyre on 2 workers vs fixed per-process stacks vs the ideal.

    python benchmarks/makespan.py [--runs 12] [--repeats 3] [--min-events 70]

Generates heavy-tailed run files (every run is at least ~1 s of CPU work in the detector
example's three phases), then, interleaved in each repeat:

- serial: every run's three phases one after another in this process (the total work W and
  the longest run L, measured, not assumed);
- gyre: ``start_pipeline`` on gyre's local cluster of 2 single-threaded workers (the cluster
  is started before the clock, as in a job that runs many pipelines; the cold figure with the
  cluster start is printed too), and the same on a ``LocalCluster`` with dask's default
  worker settings ("untuned": no quiet event loop, no core binding, see gyre.execution.tuning);
- stacks: the home-grown way — runs sorted by file size, largest first, dealt back and
  forth across 2 processes up front, each process working through its stack;
- ideal: max(W / 2, L).

Prints the medians and the ratios gyre/ideal and gyre/stacks.
"""

from __future__ import annotations

import os

# one BLAS thread per process everywhere, as dask's nannies set for their workers: otherwise the
# serial reference and the stacks would use both cores per process and the comparison would
# measure thread oversubscription, not scheduling
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "detector"))

from detector import make_pipeline
from distributed import Client, LocalCluster
from generate import simulate_events, write_run

from gyre import LocalModel, start_pipeline
from gyre.context import RunContext
from gyre.job.seeding import block_generator, run_generator
from gyre.progress import ProgressReporter
from gyre.result import PhaseResult


def make_runs(directory: Path, n_runs: int, min_events: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes = (min_events * (rng.pareto(1.5, size=n_runs) + 1.0)).astype(int)
    sizes = np.minimum(sizes, 8 * min_events)
    for run, n_events in enumerate(sizes, start=1):
        traces, truth = simulate_events(np.random.default_rng([seed, run]), int(n_events))
        write_run(directory / f"run_{run:04d}.h5", traces, truth, run)
    return [int(s) for s in sizes]


def process_run(workspace: Path, run_dir: Path, run: int) -> float:
    """All three phases of one run in this process; returns the seconds it took."""
    pipeline = make_pipeline(workspace, run_dir, seed=1)
    started = time.perf_counter()
    payload = PhaseResult({"run": run_dir / f"run_{run:04d}.h5"}, run=run)
    for phase in pipeline.phases:
        split = {}
        if phase.split is not None:  # the whole run's events, one generator per block, as gyre gives them
            with h5py.File(run_dir / f"run_{run:04d}.h5", "r") as handle:
                n_events = handle[phase.split.dataset].shape[0]
            split = {
                "events": range(n_events),
                "events_per_block": phase.split.events_per_block,
                "block_rng": partial(block_generator, 1, phase.name, run),
            }
        ctx = RunContext(
            workspace=workspace,
            run=run,
            phase=phase.name,
            rng=run_generator(1, phase.name, run),
            progress=ProgressReporter(phase.name, run),
            shared=phase.shared_data(workspace),
            **split,
        )
        payload = phase.run(payload, ctx)
    return time.perf_counter() - started


def serial(workspace: Path, run_dir: Path, runs: list[int]) -> list[float]:
    make_pipeline(workspace, run_dir).create_workspace()
    make_pipeline(workspace, run_dir).create_assets()
    return [process_run(workspace, run_dir, run) for run in runs]


def _stack_worker(workspace: Path, run_dir: Path, stack: list[int]) -> None:
    for run in stack:
        process_run(workspace, run_dir, run)


def stacks(workspace: Path, run_dir: Path, runs: list[int], n_procs: int = 2) -> float:
    """Fixed stacks by file size, largest first, dealt back and forth (0,1,1,0,0,1,...)."""
    make_pipeline(workspace, run_dir).create_workspace()
    make_pipeline(workspace, run_dir).create_assets()
    by_size = sorted(runs, key=lambda r: -(run_dir / f"run_{r:04d}.h5").stat().st_size)
    assigned: list[list[int]] = [[] for _ in range(n_procs)]
    for index, run in enumerate(by_size):
        lap, position = divmod(index, n_procs)
        assigned[position if lap % 2 == 0 else n_procs - 1 - position].append(run)
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    processes = [context.Process(target=_stack_worker, args=(workspace, run_dir, s)) for s in assigned]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return time.perf_counter() - started


def timed_pipeline(workspace: Path, run_dir: Path, n_runs: int, client: Client) -> float:
    """Seconds ``start_pipeline`` takes for all runs on the cluster of ``client``."""
    started = time.perf_counter()
    # whole runs: this benchmark measures scheduling against max(W/2, L); benchmarks/split.py measures splitting
    pipeline = make_pipeline(workspace, run_dir)
    report = start_pipeline(pipeline, 1, n_runs, client=client, disable_display=True, split=False)
    elapsed = time.perf_counter() - started
    assert report.ok, report.summary()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="gyre makespan benchmark")
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-events", type=int, default=420)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        run_dir = root / "runs"
        run_dir.mkdir()
        sizes = make_runs(run_dir, args.runs, args.min_events, args.seed)
        runs = list(range(1, args.runs + 1))
        print(f"{args.runs} runs, events per run: {sizes}")
        figures: dict[str, list[float]] = {
            "serial W": [],
            "shortest run": [],
            "longest L": [],
            "ideal": [],
            "gyre": [],
            "gyre untuned": [],
            "gyre cold": [],
            "stacks": [],
        }
        for repeat in range(args.repeats):
            times = serial(root / f"serial{repeat}", run_dir, runs)
            work, longest = sum(times), max(times)
            figures["serial W"].append(work)
            figures["shortest run"].append(min(times))
            figures["longest L"].append(longest)
            figures["ideal"].append(max(work / 2, longest))

            # warm: the cluster is up before the clock; gyre's own (tuned) and dask's defaults
            with LocalModel(2).open() as engine:
                figures["gyre"].append(timed_pipeline(root / f"gyre{repeat}", run_dir, args.runs, engine.client))
            with (
                LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
                ) as cluster,
                Client(cluster) as client,
            ):
                client.wait_for_workers(2)
                figures["gyre untuned"].append(timed_pipeline(root / f"untuned{repeat}", run_dir, args.runs, client))

            started = time.perf_counter()
            pipeline = make_pipeline(root / f"cold{repeat}", run_dir)
            report = start_pipeline(pipeline, 1, args.runs, n_procs=2, disable_display=True, split=False)
            figures["gyre cold"].append(time.perf_counter() - started)
            assert report.ok, report.summary()

            figures["stacks"].append(stacks(root / f"stacks{repeat}", run_dir, runs))
            print(
                f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()),
                flush=True,
            )

    median = {k: statistics.median(v) for k, v in figures.items()}
    print()
    print(f"{'measure':<12} {'median s':>9}")
    for key, value in median.items():
        print(f"{key:<12} {value:>9.2f}")
    print()
    print(f"gyre/ideal        {median['gyre'] / median['ideal']:.3f}   (target <= 1.15)")
    print(f"gyre/stacks       {median['gyre'] / median['stacks']:.3f}")
    print(f"untuned/ideal     {median['gyre untuned'] / median['ideal']:.3f}   (dask's default worker settings)")
    print(f"gyre cold/ideal   {median['gyre cold'] / median['ideal']:.3f}   (includes starting the cluster)")
    print(f"stacks/ideal      {median['stacks'] / median['ideal']:.3f}")


if __name__ == "__main__":
    main()
