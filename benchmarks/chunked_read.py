"""Peak memory of a phase-like reduction over a big run file: chunked reads vs one whole read.

Generates a run file of ``--size-gb`` (default 2 GB: per-event 512-sample float32 traces and
an energy) in a temporary directory, then runs the same reduction -- a histogram of each
event's trace maximum and the summed energy -- in a fresh process per method, and prints
each process's peak resident memory (``VmHWM``, in MB of 10^6 bytes) and the ratios:

* ``naive``: ``h5py`` reads each dataset whole, as a phase that ignores the file's size would;
* ``iter_chunks``: ``gyre.io.iter_chunks`` hands the phase ``--chunk-mb`` of events at a time;
* ``open_run``: ``gyre.io.open_run`` as a chunked dask-backed ``xarray.Dataset`` (threaded).

Run: ``python benchmarks/chunked_read.py [--size-gb 2] [--chunk-mb 32]``. The file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLES = 512
BINS = np.linspace(0.0, 1.0, 65)
METHODS = ("iter_chunks", "naive", "open_run")


def generate(path: Path, size_gb: float) -> int:
    """Write a raw run file (no dimension scales, as a DAQ would) of about ``size_gb``; return the events."""
    import h5py

    row = SAMPLES * 4 + 8
    n_events = int(size_gb * 1e9) // row
    block = 8192
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as handle:
        trace = handle.create_dataset("trace", shape=(n_events, SAMPLES), dtype="f4", chunks=(256, SAMPLES))
        energy = handle.create_dataset("energy", shape=(n_events,), dtype="f8")
        for start in range(0, n_events, block):
            stop = min(start + block, n_events)
            trace[start:stop] = rng.random((stop - start, SAMPLES), dtype=np.float32) ** 4
            energy[start:stop] = rng.random(stop - start)
    return n_events


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (10^6 bytes).

    ``VmHWM`` counts this process image only; ``ru_maxrss`` (the fallback off Linux) can
    include the parent's memory at ``fork`` time.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def reduce_file(method: str, path: str, chunk_bytes: int) -> dict[str, object]:
    """The phase-like reduction by one method; runs inside the measured process."""
    import h5py

    from gyre.io import iter_chunks, open_run

    baseline = peak_rss_mb()
    started = time.perf_counter()
    counts = np.zeros(len(BINS) - 1, dtype=np.int64)
    if method == "naive":
        with h5py.File(path, "r") as handle:
            trace = handle["trace"][:]
            energy_sum = float(handle["energy"][:].sum())
        counts += np.histogram(trace.max(axis=1), bins=BINS)[0]
    elif method == "iter_chunks":
        energy_sum = 0.0
        for chunk in iter_chunks(path, ["trace", "energy"], chunk_bytes=chunk_bytes):
            counts += np.histogram(chunk["trace"].max(axis=1), bins=BINS)[0]
            energy_sum += float(chunk["energy"].sum())
    elif method == "open_run":
        import dask
        import dask.array as da

        ds = open_run(path, chunk_bytes=chunk_bytes)
        hist = da.histogram(ds.trace.max("trace_axis1").data, bins=BINS)[0]
        computed_counts, computed_sum = dask.compute(hist, ds.energy.sum().data, scheduler="threads")
        counts += computed_counts
        energy_sum = float(computed_sum)
    else:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    return {
        "method": method,
        "seconds": time.perf_counter() - started,
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "counts": counts.tolist(),
        "energy_sum": energy_sum,
    }


def measure(method: str, path: Path, chunk_bytes: int) -> dict[str, object]:
    """Run ``method`` in a fresh Python process and return what it measured."""
    command = [sys.executable, __file__, "--worker", method, str(path), "--chunk-mb", str(chunk_bytes / 2**20)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="size of the generated run file (GB)")
    parser.add_argument("--chunk-mb", type=float, default=32.0, help="chunk size of the chunked readers (MiB)")
    parser.add_argument("--dir", default=None, help="where to put the temporary run file")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    chunk_bytes = int(args.chunk_mb * 2**20)
    if args.worker:
        print(json.dumps(reduce_file(args.worker[0], args.worker[1], chunk_bytes)))
        return

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="gyre-bench-") as tmp:
        path = Path(tmp) / "run_0001.h5"
        started = time.perf_counter()
        n_events = generate(path, args.size_gb)
        size_gb = path.stat().st_size / 1e9
        print(
            f"run file: {size_gb:.2f} GB, {n_events:,} events x {SAMPLES} samples "
            f"(written in {time.perf_counter() - started:.1f} s); chunks of {args.chunk_mb:g} MiB"
        )
        results = {method: measure(method, path, chunk_bytes) for method in METHODS}
    reference = results["naive"]
    print(f"{'method':<12} {'peak RSS MB':>12} {'after imports MB':>17} {'seconds':>8}  same result")
    for method, result in results.items():
        same = result["counts"] == reference["counts"] and np.isclose(result["energy_sum"], reference["energy_sum"])
        print(
            f"{method:<12} {result['peak_mb']:>12.0f} {result['baseline_mb']:>17.0f} "
            f"{result['seconds']:>8.1f}  {'yes' if same else 'NO'}"
        )
    for method in ("iter_chunks", "open_run"):
        ratio = float(reference["peak_mb"]) / float(results[method]["peak_mb"])
        print(f"peak memory naive / {method}: {ratio:.1f}x")
    chunked_peak = float(results["iter_chunks"]["peak_mb"])
    verdict = "PASS" if chunked_peak < 300 and float(reference["peak_mb"]) > 2000 else "FAIL"
    print(
        f"{verdict}: iter_chunks peak {chunked_peak:.0f} MB (< 300 MB wanted), "
        f"naive peak {float(reference['peak_mb']):.0f} MB (> 2000 MB expected)"
    )


if __name__ == "__main__":
    main()
