"""Checking run files against the first phase's schema: metadata only vs reading the data.

    python benchmarks/validate_run_files.py [--files 1000] [--events 20000]

Writes ``--files`` run files of ``--events`` float64 samples each (a temporary directory),
then times, interleaved over three repeats, ``gyre.job.dryrun.check_run_files`` (what
``gyre validate --runs`` does: dataset names and dtypes from each file's metadata) and, for
comparison, opening each file and reading the dataset the schema names. Prints the medians,
the time per file and the ratio. The files were just written, so both read from the page
cache: the ratio is a lower bound of what metadata-only saves on a cold parallel filesystem.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, Pipeline, Schema
from gyre.job.dryrun import check_run_files
from gyre.runs import discover_runs


class Needs(Phase):
    """A first phase that needs ``signal`` as float64."""

    name = "needs"
    incoming_schema = Schema({"signal": "float64"})

    def run(self, payload, ctx):  # type: ignore[no-untyped-def]  # never called here
        raise NotImplementedError


def read_everything(paths: list[Path]) -> int:
    """Open each file and read its ``signal``: what finding a problem at run time costs."""
    total = 0
    for path in paths:
        with h5py.File(path, "r") as handle:
            total += int(handle["signal"][...].size)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch) / "runs"
        runs.mkdir()
        data = np.random.default_rng(1).normal(size=args.events)
        for run in range(1, args.files + 1):
            with h5py.File(runs / f"run_{run:04d}.h5", "w") as handle:
                handle.create_dataset("signal", data=data)
        pipeline = Pipeline([Needs()], [True], Path(scratch) / "ws", runs)
        found = discover_runs(runs, 1, args.files).found
        metadata, reading = [], []
        for _ in range(3):
            start = time.perf_counter()
            assert check_run_files(pipeline, found) == {}
            metadata.append(time.perf_counter() - start)
            start = time.perf_counter()
            read_everything([f.path for f in found])
            reading.append(time.perf_counter() - start)
    meta, full = statistics.median(metadata), statistics.median(reading)
    size = args.events * 8 / 1e6
    print(f"{args.files} run files of {size:.2f} MB each (medians of 3)")
    print(f"  check_run_files (metadata only): {meta:.2f} s, {1e3 * meta / args.files:.2f} ms per file")
    print(f"  open and read the dataset:        {full:.2f} s, {1e3 * full / args.files:.2f} ms per file")
    print(f"  ratio: {full / meta:.1f}x")


if __name__ == "__main__":
    main()
