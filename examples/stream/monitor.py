"""Online monitoring of a strip detector with gyre.stream: filter → reconstruct → histogram.

A producer thread plays the data acquisition: it generates events (64 strips of ADC counts,
with 0 to 3 particles each) and puts them into the stream while earlier events are still
being processed. The stages::

    select ──→ reconstruct ──→ histogram     (energy of every reconstructed hit)
           └─→ occupancy                     (which strips fired)

``select`` drops empty events (returns None); ``reconstruct`` applies the per-strip gains of a
calibration file, opened once per worker process, and yields one hit per cluster of strips
(a generator); ``histogram`` turns a hit's energy into a bin. The main thread fills the
histograms as results arrive and prints them at the end.

    python examples/stream/monitor.py                      # 2 worker processes, 400 events
    python examples/stream/monitor.py --cluster sync       # everything in this process
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gyre.stream import Stage, Stream

N_STRIPS = 64
PEDESTAL = 50.0
NOISE = 3.0
THRESHOLD = 25.0  # ADC counts above pedestal for a strip to fire
ENERGY_BINS = np.linspace(0.0, 600.0, 25)


def write_calibration(path: Path, seed: int) -> Path:
    """A calibration file: per-strip pedestal and gain, as the detector group would ship it."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as calib:
        calib["pedestal"] = np.full(N_STRIPS, PEDESTAL)
        calib["gain"] = rng.uniform(0.8, 1.2, N_STRIPS)
    return path


def generate_events(n_events: int, seed: int) -> Iterator[dict[str, Any]]:
    """Raw events: ADC counts per strip (pedestal + noise + charge of 0-3 particles)."""
    rng = np.random.default_rng(seed)
    gains = np.random.default_rng(seed).uniform(0.8, 1.2, N_STRIPS)  # what the calibration corrects
    strips = np.arange(N_STRIPS)
    for number in range(n_events):
        adc = rng.normal(PEDESTAL, NOISE, N_STRIPS)
        for _ in range(rng.choice(4, p=[0.3, 0.4, 0.2, 0.1])):
            centre, energy = rng.uniform(2, N_STRIPS - 2), rng.gamma(6.0, 50.0)
            share = np.exp(-0.5 * ((strips - centre) / 0.8) ** 2)
            adc += energy * share / share.sum() * gains
        yield {"number": number, "adc": adc}


def select(event: dict[str, Any]) -> dict[str, Any] | None:
    """Keep events with at least one strip over threshold; None drops the others."""
    if (event["adc"] - PEDESTAL).max() < THRESHOLD:
        return None
    return event


def open_calibration(path: str) -> dict[str, np.ndarray]:
    """Read the calibration once in each worker process."""
    with h5py.File(path, "r") as calib:
        return {"pedestal": calib["pedestal"][()], "gain": calib["gain"][()]}


def reconstruct(event: dict[str, Any], calibration: dict[str, np.ndarray]) -> Iterator[dict[str, Any]]:
    """One hit (energy, position) per cluster of neighbouring strips over threshold."""
    charge = (event["adc"] - calibration["pedestal"]) / calibration["gain"]
    fired = np.flatnonzero(charge > THRESHOLD)
    if fired.size == 0:
        return
    for cluster in np.split(fired, np.flatnonzero(np.diff(fired) > 1) + 1):
        around = np.arange(max(cluster[0] - 1, 0), min(cluster[-1] + 2, N_STRIPS))
        weights = np.clip(charge[around], 0.0, None)
        yield {
            "event": event["number"],
            "energy": float(weights.sum()),
            "position": float((around * weights).sum() / weights.sum()),
        }


def histogram(hit: dict[str, Any]) -> int:
    """The energy bin of a hit (overflow goes to the last bin)."""
    return int(np.clip(np.digitize(hit["energy"], ENERGY_BINS) - 1, 0, len(ENERGY_BINS) - 2))


def occupancy(event: dict[str, Any]) -> np.ndarray:
    """The strips over threshold in an event."""
    return np.flatnonzero(event["adc"] - PEDESTAL > THRESHOLD)


def build_stages(calibration: Path, workers: int) -> Stage:
    """The stage tree, from its first stage."""
    first = Stage(select, workers=workers)
    first.link(
        Stage(reconstruct, workers=workers, ordered=False, init=partial(open_calibration, str(calibration)))
    ).link(Stage(histogram, workers=workers, ordered=False))
    first.link(Stage(occupancy))
    return first


def print_histogram(counts: np.ndarray) -> None:
    """A text histogram of hit energies."""
    scale = 50 / max(counts.max(), 1)
    for low, count in zip(ENERGY_BINS[:-1], counts, strict=True):
        print(f"  {low:6.0f} │{'█' * round(count * scale):<50} {count}")


def main(argv: list[str] | None = None) -> int:
    """Run the monitor; returns 0 when every event was accounted for."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400, help="events to generate (default 400)")
    parser.add_argument("--cluster", default="local", help="sync, local (default), mpi or a scheduler address")
    parser.add_argument("--n-procs", type=int, default=2, help="worker processes of a local cluster")
    parser.add_argument("--workers", type=int, default=4, help="items each stage has in flight at most")
    parser.add_argument("--backlog", type=int, default=32, help="events in the stream at most")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        calibration = write_calibration(Path(tmp) / "calibration.h5", args.seed)
        first = build_stages(calibration, workers=args.workers)
        energy = np.zeros(len(ENERGY_BINS) - 1, dtype=int)
        strips = np.zeros(N_STRIPS, dtype=int)
        failures = []
        opening = time.perf_counter()
        with Stream(first, cluster=args.cluster, n_procs=args.n_procs, backlog=args.backlog) as stream:
            started = time.perf_counter()

            def acquire() -> None:  # the data acquisition, feeding the stream as it runs
                for event in generate_events(args.events, args.seed):
                    stream.put(event)
                stream.put(None)

            daq = threading.Thread(target=acquire, name="daq")
            daq.start()
            for result in stream:
                if not result.ok:
                    failures.append(result)
                elif result.stage == "histogram":
                    energy[result.value] += 1
                elif result.stage == "occupancy":
                    strips[result.value] += 1
            daq.join()
            elapsed = time.perf_counter() - started

    print(f"workers ready in {started - opening:.1f} s ({args.cluster})")
    print(f"{args.events} events in {elapsed:.2f} s ({args.events / elapsed:.0f} events/s)")
    print(f"{energy.sum()} hits reconstructed; strip occupancy {strips.min()}-{strips.max()} per strip")
    print("hit energy (calibrated ADC):")
    print_histogram(energy)
    for failure in failures:
        print(f"event {failure.index} failed in {failure.stage}: {failure.error!r}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
