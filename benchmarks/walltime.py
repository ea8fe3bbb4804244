"""Finishing inside the walltime: a job of ~60 s of work under a 30 s walltime, then the job that finishes it.

    python benchmarks/walltime.py [--repeats 3] [--work 60] [--walltime 30]

24 runs, two phases each (``prepare``, a tenth of a run's time, and ``fit``), whose run
costs spread from 1 to 4 units; 2 local workers (``gyre run --procs 2``, cluster start
included, as a batch job would). Per repeat, in a fresh workspace:

1. ``gyre run --walltime 0:30``: must exit with status 3 (stopped at the deadline, resumable)
   before the 30 s are over, with every (phase, run) it finished recorded in the manifest;
2. ``gyre run`` again (no walltime): must exit 0 having recomputed none of them.

Prints both times per repeat and their medians. The phases sleep, so the figures measure
gyre's stop and resume, not the load of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gyre import Manifest

PIPELINE = """
import time
import h5py
import numpy as np
import gyre


class Prepare(gyre.Phase):
    name = "prepare"
    incoming_schema = gyre.Schema({{"adc": "float64"}})
    outgoing_schema = gyre.Schema({{"adc": "float64"}})

    def run(self, payload, ctx):
        with h5py.File(payload.artifacts["run"], "r") as handle:
            adc, seconds = handle["adc"][...], float(handle.attrs["seconds"])
        time.sleep(0.1 * seconds)
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("adc", data=adc)
            out.attrs["seconds"] = seconds
        return gyre.PhaseResult({{self.name: ctx.artifact_path()}}, run=ctx.run)


class Fit(gyre.Phase):
    name = "fit"
    incoming_schema = gyre.Schema({{"adc": "float64"}})

    def run(self, payload, ctx):
        with h5py.File(payload.artifacts["prepare"], "r") as handle:
            adc, seconds = handle["adc"][...], float(handle.attrs["seconds"])
        time.sleep(0.9 * seconds)
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("total", data=np.array([adc.sum()]))
        return gyre.PhaseResult({{self.name: ctx.artifact_path()}}, run=ctx.run)


pipeline = gyre.Pipeline([Prepare(), Fit()], [True, True], {workspace!r}, {runs!r}, seed=3)
"""


def make_runs(directory: Path, n_runs: int, work: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    units = rng.uniform(1.0, 4.0, size=n_runs)
    directory.mkdir(parents=True, exist_ok=True)
    for run, unit in enumerate(units, start=1):
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle.create_dataset("adc", data=rng.normal(size=200))
            handle.attrs["seconds"] = float(work * unit / units.sum())


def gyre_run(module: Path, n_runs: int, *options: str) -> tuple[int, float, float]:
    """Run ``gyre run``; returns its exit status, its seconds and when it ended (``time.time()``)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", "--runs", f"1-{n_runs}", "--procs", "2",
         "--no-display", *options],
        capture_output=True, text=True, timeout=600, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    if done.returncode not in (0, 3):
        raise SystemExit(f"gyre run {' '.join(options)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode, time.perf_counter() - started, time.time()


def statuses(workspace: Path) -> dict[str, set[tuple[str, int]]]:
    records = json.loads((workspace / "report.json").read_text())["records"]
    out: dict[str, set[tuple[str, int]]] = {}
    for record in records:
        out.setdefault(record["status"], set()).add((record["phase"], record["run"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="gyre walltime benchmark")
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=float, default=60.0, help="seconds of work in all")
    parser.add_argument("--walltime", type=int, default=30, help="seconds")
    args = parser.parse_args()
    firsts, seconds_ = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            root = Path(scratch) / str(repeat)
            make_runs(root / "runs", args.runs, args.work, seed=repeat)
            workspace = root / "ws"
            module = root / "walltime_pipeline.py"
            module.write_text(PIPELINE.format(workspace=str(workspace), runs=str(root / "runs")))

            launched = time.time()
            code, first, ended = gyre_run(module, args.runs, "--walltime", f"0:{args.walltime}")
            first_done = statuses(workspace).get("done", set())
            recorded = {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}
            lock_left = (workspace / ".gyre" / "lock.json").exists()
            code2, second, _ = gyre_run(module, args.runs, "--walltime", "none")
            again = statuses(workspace)
            recomputed = again.get("done", set()) & first_done
            firsts.append(first)
            seconds_.append(second)
            print(
                f"repeat {repeat + 1}: first job exit {code} after {first:.1f} s "
                f"({launched + args.walltime - ended:.1f} s before the deadline), {len(first_done)} of "
                f"{2 * args.runs} (phase, run)s done, all recorded: {first_done <= recorded}, lock left: {lock_left}; "
                f"second job exit {code2} after {second:.1f} s, {len(again.get('done', set()))} computed, "
                f"{len(again.get('cached', set()))} cached, {len(recomputed)} recomputed",
                flush=True,
            )
    print()
    print(f"median first job {statistics.median(firsts):.1f} s (walltime {args.walltime} s, {args.work:g} s of work)")
    print(f"median second job {statistics.median(seconds_):.1f} s")


if __name__ == "__main__":
    main()
