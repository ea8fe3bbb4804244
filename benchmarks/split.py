# ruff: noqa: E402
"""Splitting a big run by event range: gyre whole vs split on 2 workers vs both ideals, and the model at scale.

    python benchmarks/split.py [--repeats 3] [--events 24000] [--ms 1.0]

Eight run files, one of which holds ~70 % of the events, and one phase that costs ~1 ms of
CPU per event (a small numpy iteration, calibrated here before anything is timed; ≥ 20 s of
work in all). Interleaved in each repeat:

- serial: every run processed in this process, one after the other: the total work W and
  the longest run L, measured, not assumed;
- gyre whole: ``start_pipeline(..., split=False)`` on a ``LocalCluster`` of 2 single-threaded
  workers started before the clock (a fresh cluster per job, so that each worker's peak
  memory is that job's);
- gyre split: the same with splitting on (the default): the big run goes in parts, merged;
- ideals: the run-granular ideal max(W/2, L), which no scheduler of whole files can beat,
  and the event-granular ideal W/2.

Prints the medians side by side, the ratios, and each worker's peak resident memory
(``ru_maxrss``). Target: split ≤ 1.15 × W/2. On a shared machine whose load changes between
the jobs of a repeat, W (measured serially) can be far from what a job saw, so each job is
also set against its own ideal, from the seconds its tasks took (T in all, L on the longest
run): whole / max(T/2, L) and split / T/2. The order of the two jobs alternates by repeat.

Then, from docs/scaling.md's model (LPT list scheduling of tasks plus 1.2 ms of scheduler
CPU per task; merges not counted), what splitting gives on 64 and 1,000 workers for
campaigns of 500 and 5,000 runs of log-normal sizes (σ = 1, median 30 s).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # one BLAS thread per process, as dask's nannies set

import argparse
import heapq
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from distributed import Client, LocalCluster

from gyre import Phase, PhaseResult, Pipeline, RunContext, Split, iter_chunks, start_pipeline, write_artifact
from gyre.job.splitting import PARTS_PER_THREAD

#: the per-event computation: a fixed 16 × 16 map iterated; its cost is set by the iteration count
_MATRIX = np.random.default_rng(0).normal(scale=0.3, size=(16, 16))
BLOCK = 250


def event_work(seed: float, rng: np.random.Generator, iterations: int) -> np.ndarray:
    """One event's result: a drawn start vector pushed ``iterations`` times through the map."""
    x = rng.normal(size=16) * seed
    for _ in range(iterations):
        x = np.tanh(_MATRIX @ x + 0.1)
    return x


class BusyPhase(Phase):
    """~1 ms of CPU per event; its events are independent, so it declares a split."""

    name = "busy"
    split = Split(dataset="seed", events_per_block=BLOCK)

    def __init__(self, iterations: int) -> None:
        super().__init__()
        self.iterations = iterations

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        assert ctx.events is not None
        seeds = np.concatenate([c["seed"] for c in iter_chunks(payload.artifacts["run"], ["seed"], events=ctx.events)])
        out = np.empty((len(ctx.events), 16))
        for block, rng in ctx.event_blocks():
            for event in block:
                out[event - ctx.events.start] = event_work(seeds[event - ctx.events.start], rng, self.iterations)
        write_artifact(
            ctx.artifact_path(),
            {"result": (("event", "k"), out)},
            coords={"event": np.arange(ctx.events.start, ctx.events.stop)},
            run=ctx.run,
            phase=self.name,
        )
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def calibrate(ms: float) -> int:
    """Iterations per event for ``ms`` milliseconds of work on this machine (now)."""
    rng = np.random.default_rng(1)
    trial = 200
    started = time.perf_counter()
    for _ in range(50):
        event_work(1.0, rng, trial)
    per_iteration = (time.perf_counter() - started) / (50 * trial)
    return max(1, round(ms * 1e-3 / per_iteration))


def make_runs(directory: Path, total: int) -> dict[int, int]:
    """8 runs: run 1 holds 70 % of ``total`` events, the other 7 share the rest."""
    big = round(0.7 * total)
    rest = total - big
    sizes = {1: big, **{run: rest // 7 + (run - 2 < rest % 7) for run in range(2, 9)}}
    directory.mkdir(parents=True, exist_ok=True)
    for run, n in sizes.items():
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle["seed"] = np.random.default_rng(run).uniform(0.5, 1.5, size=n)
    return sizes


def serial(run_dir: Path, sizes: dict[int, int], iterations: int) -> list[float]:
    """Seconds per run, computed in this process (each event with its block's generator, as gyre does)."""
    from gyre.job.seeding import block_generator

    seconds = []
    for run, n in sizes.items():
        with h5py.File(run_dir / f"run_{run:04d}.h5", "r") as handle:
            seeds = handle["seed"][...]
        started = time.perf_counter()
        for block in range(-(-n // BLOCK)):
            rng = block_generator(0, "busy", run, block)
            for event in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
                event_work(seeds[event], rng, iterations)
        seconds.append(time.perf_counter() - started)
    return seconds


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gyre_job(
    run_dir: Path, workspace: Path, iterations: int, *, split: bool
) -> tuple[float, list[float], int, float, float]:
    """One job on a fresh 2-worker cluster: wall seconds, each worker's peak MiB, the parts of run 1,
    and the seconds its tasks took in all and on the longest run (as this job saw the machine)."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        pipeline = Pipeline([BusyPhase(iterations)], [True], workspace, run_dir, seed=0, name="split-bench")
        started = time.perf_counter()
        report = start_pipeline(pipeline, 1, 8, client=client, disable_display=True, split=split)
        wall = time.perf_counter() - started
        assert report.ok, report.render()
        peaks = sorted(client.run(_peak_rss_mib).values())
    seconds = {}
    for run in report.runs:
        outcome = report.outcome("busy", run)
        seconds[run] = (outcome.duration or 0.0) + sum(part["seconds"] or 0.0 for part in outcome.parts)
    return wall, peaks, len(report.outcome("busy", 1).parts), sum(seconds.values()), max(seconds.values())


def same_artifacts(a: Path, b: Path) -> bool:
    """Whether two workspaces' run artifacts hold the same values."""
    for path in sorted(a.glob("busy/run_*.h5")):
        with h5py.File(path, "r") as x, h5py.File(b / "busy" / path.name, "r") as y:
            if not np.array_equal(x["result"][...], y["result"][...]):
                return False
    return True


# -- the model at scale ------------------------------------------------------------------------


def lpt(durations: list[float], workers: int) -> float:
    """Makespan of largest-first list scheduling of ``durations`` on ``workers``."""
    loads = [0.0] * workers
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def modelled(sizes: np.ndarray, workers: int, *, c_task: float = 1.2e-3) -> tuple[float, float, float, int]:
    """(whole, split, W/P, parts) for runs of ``sizes`` seconds on ``workers``: LPT makespans, each at
    least the scheduler's time for its tasks (``c_task`` each, docs/scaling.md), split with gyre's rule."""
    total = float(sizes.sum())
    bound = total / (workers * PARTS_PER_THREAD)
    pieces: list[float] = []
    parts = 0
    for size in sizes:
        count = math.ceil(size / bound) if size > bound else 1
        parts += count if count > 1 else 0
        pieces += [size / count] * count
    merges = parts and sum(1 for s in sizes if s > bound)
    whole = max(lpt(list(sizes), workers), len(sizes) * c_task)
    split = max(lpt(pieces, workers), (len(pieces) + merges) * c_task)
    return whole, split, total / workers, parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=24000, help="events in all (at ~1 ms each)")
    parser.add_argument("--ms", type=float, default=1.0, help="milliseconds of work per event")
    args = parser.parse_args(argv)

    iterations = calibrate(args.ms)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"calibrated: {iterations} iterations per event for ~{args.ms} ms; {os.cpu_count()} cores, load {load}")
    rows: dict[str, list[float]] = {k: [] for k in ("W", "L", "whole", "split")}
    # each job against its own ideal, from the seconds its tasks took: robust to a machine whose
    # load changes between the jobs of a repeat
    own: dict[str, list[float]] = {"whole": [], "split": []}
    peaks: dict[str, list[float]] = {"whole": [], "split": []}
    with tempfile.TemporaryDirectory(prefix="gyre-split-") as tmp:
        root = Path(tmp)
        sizes = make_runs(root / "runs", args.events)
        print(f"runs: {sizes} (run 1: {sizes[1] / sum(sizes.values()):.0%} of the events)")
        n_parts = 0
        for repeat in range(args.repeats):
            seconds = serial(root / "runs", sizes, iterations)
            rows["W"].append(sum(seconds))
            rows["L"].append(max(seconds))
            for mode in ("whole", "split") if repeat % 2 == 0 else ("split", "whole"):  # alternated
                wall, peak, parts, task_seconds, longest = gyre_job(
                    root / "runs", root / f"ws-{mode}-{repeat}", iterations, split=mode == "split"
                )
                rows[mode].append(wall)
                ideal = task_seconds / 2 if mode == "split" else max(task_seconds / 2, longest)
                own[mode].append(wall / ideal)
                peaks[mode].extend(peak)
                n_parts = parts if mode == "split" else n_parts
            print(
                f"  repeat {repeat + 1}: W {rows['W'][-1]:.1f} s, L {rows['L'][-1]:.1f} s, "
                f"whole {rows['whole'][-1]:.1f} s, split {rows['split'][-1]:.1f} s",
                flush=True,
            )
        identical = same_artifacts(root / "ws-split-0", root / "ws-whole-0")

    med = {k: statistics.median(v) for k, v in rows.items()}
    run_ideal, event_ideal = max(med["W"] / 2, med["L"]), med["W"] / 2
    print(f"\nmedians of {args.repeats} (seconds), 2 workers, run 1 split into {n_parts} parts:")
    print(f"  {'serial W':>10} {'longest L':>10} {'max(W/2,L)':>11} {'W/2':>7} {'gyre whole':>11} {'gyre split':>11}")
    print(
        f"  {med['W']:>10.1f} {med['L']:>10.1f} {run_ideal:>11.1f} {event_ideal:>7.1f} "
        f"{med['whole']:>11.1f} {med['split']:>11.1f}"
    )
    print(f"  whole / max(W/2,L) = {med['whole'] / run_ideal:.2f}")
    print(f"  split / W/2        = {med['split'] / event_ideal:.2f}   (target ≤ 1.15)")
    print(f"  split / whole      = {med['split'] / med['whole']:.2f}")
    print(
        f"  each job vs its own ideal (from its tasks' seconds): whole / max(T/2, L) = "
        f"{statistics.median(own['whole']):.2f}, split / T/2 = {statistics.median(own['split']):.2f}"
    )
    print(f"  merged artifacts identical to unsplit: {identical}")
    print(
        f"  peak resident memory per worker: whole {max(peaks['whole']):.0f} MiB, split {max(peaks['split']):.0f} MiB "
        f"(max over workers and repeats)"
    )

    print("\nmodel (docs/scaling.md): log-normal run sizes (σ = 1, median 30 s), LPT + 1.2 ms of scheduler per task:")
    columns = ("runs", "workers", "W/P", "longest", "whole", "split", "parts", "whole/split")
    print("  " + " ".join(f"{name:>{width}}" for name, width in zip(columns, (6, 8, 9, 9, 9, 9, 7, 12))))
    for n_runs in (500, 5000):
        sizes_s = np.random.default_rng(7).lognormal(mean=math.log(30.0), sigma=1.0, size=n_runs)
        for workers in (64, 1000):
            whole, split, ideal, parts = modelled(sizes_s, workers)
            print(
                f"  {n_runs:>6} {workers:>8} {ideal:>8.0f}s {sizes_s.max():>8.0f}s {whole:>8.0f}s {split:>8.0f}s "
                f"{parts:>7} {whole / split:>11.2f}×"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
