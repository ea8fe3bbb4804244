"""Scale: thousands of runs × 3 phases of ~zero work on 2 local workers.

    python benchmarks/scale.py [--runs 1000 3000 10000] [--phases 3] [--windows 8 16 64 256 0]

For each run count, side by side in this invocation, on the same 2 single-threaded workers:

- ProcessPool: ``concurrent.futures.ProcessPoolExecutor(2)``, one call per (phase, run),
  phase after phase (``map``, chunksize 1);
- client.map: plain dask, ``client.map`` chained once per phase, the last level gathered;
- gyre: ``start_pipeline`` with its defaults: the default window, and runs fused into one
  task each once the first phases prove short (``fuse=None``);
- gyre fused: ``start_pipeline(fuse=True)``, one task per run from the first;
- gyre unfused: ``start_pipeline(fuse=False)``, one task per (phase, run).

CPU is the user + system time of the driver (this process alone), the scheduler process
and the worker processes, per (phase, run).

The dask rows run on a separate ``dask scheduler`` process and ``dask worker`` processes
(started afresh for every row, outside the clock), so the driver's memory (this process)
and the scheduler's are measured apart: peak RSS sampled every 20 ms by a thread. Time to
first task is from the ``start_pipeline`` call to the earliest ``TaskOutcome.started``.
The driver is this process: its memory column is its high-water mark so far (rows run in
growing run counts), the scheduler's is that row's own.
``--windows`` adds a sweep of gyre's window on the first run count (0 = everything at once).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil

from gyre import Phase, PhaseResult, Pipeline, RunContext, start_pipeline
from gyre.job.options import default_window

BIN = Path(sys.executable).parent


class NoopPhase(Phase):
    """~zero work: returns an empty result for the run."""

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        return PhaseResult({}, run=ctx.run)


def tiny(value: Any) -> Any:
    """The plain-dask and ProcessPool equivalent of a NoopPhase call."""
    return value


class CPUTime:
    """CPU seconds (user + system) spent by processes between enter and exit.

    The processes named in ``with_children`` count with their descendants (the ``dask worker``
    command's worker processes, a process pool's); the others alone: the driver's children
    are the scheduler and workers, measured apart.
    """

    def __init__(self, pids: dict[str, int], with_children: tuple[str, ...] = ("workers",)) -> None:
        self.pids = pids
        self.with_children = with_children
        self.seconds: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        totals = {}
        for name, pid in self.pids.items():
            root = psutil.Process(pid)
            total = 0.0
            family = root.children(recursive=True) if name in self.with_children else []
            for process in [root, *family]:
                try:
                    times = process.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
            totals[name] = total
        return totals

    def __enter__(self) -> CPUTime:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.seconds = {name: end[name] - self._start[name] for name in end}


class PeakRSS:
    """Samples the resident memory of some processes in a thread; keeps each one's peak."""

    def __init__(self, pids: dict[str, int], interval: float = 0.02) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = {name: 0 for name in pids}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._once()

    def _once(self) -> None:
        for name, process in self.processes.items():
            with suppress(psutil.Error):
                self.peak[name] = max(self.peak[name], process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._once()


@contextmanager
def dask_cluster(scratch: Path, n_workers: int = 2) -> Iterator[tuple[Any, dict[str, int]]]:
    """A scheduler process and ``n_workers`` single-threaded worker processes; yields (client, pids)."""
    from distributed import Client

    file = scratch / f"scheduler-{time.monotonic_ns()}.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", file],
        **quiet,
    )
    worker = None
    try:
        while not file.exists():
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        worker = subprocess.Popen(
            [BIN / "dask", "worker", address, "--nworkers", str(n_workers), "--nthreads", "1", "--no-dashboard"],
            **quiet,
        )
        with Client(address) as client:
            client.wait_for_workers(n_workers, timeout=120)
            yield client, {"driver": os.getpid(), "scheduler": scheduler.pid, "workers": worker.pid}
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(30)


def make_runs(directory: Path, n_runs: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for run in range(1, n_runs + 1):
        path = directory / f"run_{run:05d}.h5"
        if not path.exists():
            path.write_bytes(b"x" * (run % 97))  # uneven sizes: the largest-first order has work to do


def bench_pool(n_runs: int, n_phases: int) -> dict[str, float]:
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        list(pool.map(tiny, range(4)))  # the processes are up before the clock, as the cluster is
        with CPUTime({"driver": os.getpid()}, with_children=("driver",)) as cpu:
            started = time.perf_counter()
            values: list[Any] = list(range(n_runs))
            for _ in range(n_phases):
                values = list(pool.map(tiny, values))
            wall = time.perf_counter() - started
    return {"wall": wall, **_cpu(cpu)}


def bench_map(client: Any, pids: dict[str, int], n_runs: int, n_phases: int) -> dict[str, float]:
    with PeakRSS(pids) as rss, CPUTime(pids) as cpu:
        started = time.perf_counter()
        futures = client.map(tiny, range(n_runs), pure=False)
        for _ in range(n_phases - 1):
            futures = client.map(tiny, futures, pure=False)
        client.gather(futures)
        wall = time.perf_counter() - started
        del futures
    return {"wall": wall, "driver": rss.peak["driver"], "scheduler": rss.peak["scheduler"], **_cpu(cpu)}


def _cpu(cpu: CPUTime) -> dict[str, float]:
    return {f"cpu_{name}": seconds for name, seconds in cpu.seconds.items()}


def bench_gyre(
    client: Any,
    pids: dict[str, int],
    root: Path,
    run_dir: Path,
    n_runs: int,
    n_phases: int,
    *,
    fuse: bool | None,
    window: int | None,
) -> dict[str, float]:
    phases = [NoopPhase(f"p{index}") for index in range(n_phases)]
    workspace = root / f"ws-{n_runs}-{fuse}-{window}-{time.monotonic_ns()}"
    pipeline = Pipeline(phases, [True] * n_phases, workspace, run_dir, seed=1, run_pattern="run_{run:05d}.h5")
    with PeakRSS(pids) as rss, CPUTime(pids) as cpu:
        wall_start, started = time.time(), time.perf_counter()
        report = start_pipeline(
            pipeline,
            1,
            n_runs,
            client=client,
            disable_display=True,
            fuse=fuse,
            window=None if window is None else (window or n_runs),
        )
        wall = time.perf_counter() - started
    assert report.ok and len(report.outcomes) == n_runs * n_phases, report.summary()
    first = min(o.started for o in report.outcomes if o.started is not None)
    return {
        "wall": wall,
        "driver": rss.peak["driver"],
        "scheduler": rss.peak["scheduler"],
        "first": first - wall_start,
        **_cpu(cpu),
    }


def row(name: str, n_runs: int, n_tasks: int, figures: dict[str, float], reference: dict[str, float] | None) -> str:
    wall = figures["wall"]
    per_task = 1e3 * wall / n_tasks
    cpu = 1e3 * sum(v for k, v in figures.items() if k.startswith("cpu_")) / n_tasks
    mib = 1024 * 1024

    def column(key: str, scale: float, width: int, digits: int) -> str:
        return f"{figures[key] / scale:{width}.{digits}f}" if key in figures else f"{'-':>{width}}"

    ratio = f"{per_task / reference['wall']:6.2f}" if reference else f"{'-':>6}"
    cpu_ratio = f"{cpu / reference['cpu']:6.2f}" if reference else f"{'-':>6}"
    return (
        f"{n_runs:>6} {name:<12} {wall:8.2f} {n_tasks / wall:8.0f} {per_task:8.3f} {ratio} {cpu:8.3f} {cpu_ratio} "
        f"{1e3 * figures.get('cpu_driver', 0) / n_tasks:8.3f} {1e3 * figures.get('cpu_scheduler', 0) / n_tasks:8.3f} "
        f"{column('driver', mib, 8, 0)} {column('scheduler', mib, 8, 0)} {column('first', 1, 7, 2)}"
    )


def reference_of(n_tasks: int, figures: dict[str, float]) -> dict[str, float]:
    cpu = sum(v for k, v in figures.items() if k.startswith("cpu_"))
    return {"wall": 1e3 * figures["wall"] / n_tasks, "cpu": 1e3 * cpu / n_tasks}


HEADER = (
    f"{'runs':>6} {'':<12} {'wall s':>8} {'tasks/s':>8} {'ms/task':>8} {'×map':>6} {'cpu ms':>8} {'×map':>6} "
    f"{'drv cpu':>8} {'sch cpu':>8} {'drv MiB':>8} {'sch MiB':>8} {'first s':>7}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description="gyre scale benchmark")
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--phases", type=int, default=3)
    parser.add_argument("--windows", type=int, nargs="*", default=[])
    parser.add_argument("--skip-unfused", action="store_true", help="no gyre unfused row (quicker)")
    args = parser.parse_args()

    print(f"{args.phases} phases of ~zero work, 2 worker processes × 1 thread; default window {default_window(2)}")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        run_dir = root / "runs"
        make_runs(run_dir, max(args.runs))
        references: dict[int, dict[str, float]] = {}
        for n_runs in args.runs:
            n_tasks = n_runs * args.phases
            print(row("ProcessPool", n_runs, n_tasks, bench_pool(n_runs, args.phases), None), flush=True)
            with dask_cluster(root) as (client, pids):
                plain = bench_map(client, pids, n_runs, args.phases)
            reference = references[n_runs] = reference_of(n_tasks, plain)
            print(row("client.map", n_runs, n_tasks, plain, reference), flush=True)
            variants: list[tuple[str, bool | None]] = [("gyre", None), ("gyre fused", True), ("gyre unfused", False)]
            for name, fuse in variants[:2] if args.skip_unfused else variants:
                with dask_cluster(root) as (client, pids):
                    figures = bench_gyre(client, pids, root, run_dir, n_runs, args.phases, fuse=fuse, window=None)
                print(row(name, n_runs, n_tasks, figures, reference), flush=True)
        if args.windows:
            n_runs = args.runs[0]
            n_tasks = n_runs * args.phases
            print(f"\nwindow sweep, {n_runs} runs (0 = all runs at once); ×map against the client.map row above")
            print(HEADER.replace("      ", " window", 1), flush=True)
            for window in args.windows:
                for name, fuse in (("unfused", False), ("fused", True)):
                    with dask_cluster(root) as (client, pids):
                        figures = bench_gyre(client, pids, root, run_dir, n_runs, args.phases, fuse=fuse, window=window)
                    print(row(f"w={window} {name}", n_runs, n_tasks, figures, references[n_runs]), flush=True)


if __name__ == "__main__":
    main()
