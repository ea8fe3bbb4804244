"""An energy calibration as a workflow of plain functions (gyre.steps).

Each detector channel sees a source with known gamma lines; its ADC has an unknown gain
and offset. Per channel: simulate a spectrum, find the peaks, fit a linear calibration.
Then collect all channels into one table and check it.

    python examples/steps/calibration.py                  # 4 channels on 2 local workers
    python examples/steps/calibration.py --cluster sync   # in this process, for debugging

Run it twice: the second run loads every result from the cache directory. Change
``LINES_KEV`` or ``PEAK_WINDOW`` below and only the steps that use it are recomputed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from gyre.steps import Workflow

#: the source's gamma lines in keV (module-level data: part of the steps' fingerprints)
LINES_KEV = (122.1, 344.3, 661.7, 1173.2, 1332.5)
#: half-width in ADC bins of the region searched around each peak
PEAK_WINDOW = 25
N_BINS = 4096


def simulate_spectrum(channel: int, n_events: int, seed: int) -> dict[str, np.ndarray]:
    """A channel's ADC spectrum: the lines on an exponential background, and the true calibration."""
    rng = np.random.default_rng([seed, channel])
    gain, offset = rng.uniform(0.33, 0.38), rng.uniform(-6.0, 6.0)  # keV per bin, keV
    energies = np.concatenate(
        [
            rng.choice(LINES_KEV, size=n_events // 2),
            rng.exponential(400.0, size=n_events - n_events // 2),
        ]
    )
    energies = energies + rng.normal(0.0, 1.5 + 0.002 * energies)
    adc = (energies - offset) / gain
    counts, _ = np.histogram(adc, bins=N_BINS, range=(0, N_BINS))
    return {"counts": counts, "truth": np.array([gain, offset])}


def find_peaks(counts: np.ndarray) -> np.ndarray:
    """The centroids of the ``len(LINES_KEV)`` strongest peaks, in increasing ADC order."""
    smooth = np.convolve(counts, np.ones(5) / 5, mode="same")
    remaining = smooth.copy()
    centroids = []
    for _ in LINES_KEV:
        top = int(np.argmax(remaining))
        lo, hi = max(0, top - PEAK_WINDOW), min(N_BINS, top + PEAK_WINDOW + 1)
        bins = np.arange(lo, hi) + 0.5
        weights = np.clip(smooth[lo:hi] - np.median(smooth[lo:hi]), 0, None)
        centroids.append(float(np.average(bins, weights=weights)))
        remaining[lo:hi] = 0
    return np.sort(np.array(centroids))


def fit_calibration(peaks: np.ndarray) -> dict[str, float]:
    """Least-squares line energy = gain * adc + offset through the matched peaks."""
    gain, offset = np.polyfit(peaks, np.array(LINES_KEV), 1)
    residual = np.array(LINES_KEV) - (gain * peaks + offset)
    return {"gain": float(gain), "offset": float(offset), "rms_kev": float(np.sqrt(np.mean(residual**2)))}


def collect(fits: list[dict[str, float]], truths: list[np.ndarray]) -> dict[str, np.ndarray]:
    """One calibration table for all channels (stored as HDF5: one dataset per column)."""
    return {
        "gain": np.array([f["gain"] for f in fits]),
        "offset": np.array([f["offset"] for f in fits]),
        "rms_kev": np.array([f["rms_kev"] for f in fits]),
        "true_gain": np.array([t[0] for t in truths]),
        "true_offset": np.array([t[1] for t in truths]),
    }


def check(table: dict[str, np.ndarray], tolerance_kev: float = 2.0) -> dict[str, float | bool]:
    """Whether every channel's calibration reproduces the lines within ``tolerance_kev``."""
    worst = float(np.max(table["rms_kev"]))
    return {"worst_rms_kev": worst, "ok": worst < tolerance_kev}


def build(cache_dir: Path, *, channels: int, events: int, seed: int) -> Workflow:
    """Record the calibration workflow (nothing is computed here)."""
    wf = Workflow("calibration", cache_dir)
    simulate, peaks, fit = wf.step(simulate_spectrum), wf.step(find_peaks), wf.step(fit_calibration)
    spectra = [simulate(ch, events, seed, step_name=f"simulate_{ch}") for ch in range(channels)]
    fits = [fit(peaks(s["counts"], step_name=f"peaks_{ch}"), step_name=f"fit_{ch}") for ch, s in enumerate(spectra)]
    table = wf.step(collect)(fits, [s["truth"] for s in spectra], step_name="table")
    wf.step(check)(table, step_name="check")
    return wf


def main(argv: list[str] | None = None) -> int:
    """Build, describe and run the workflow, then print the calibration table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "gyre-calibration")
    parser.add_argument("--cluster", default="local", help="sync, local, mpi or a scheduler address")
    parser.add_argument("--n-procs", type=int, default=2)
    args = parser.parse_args(argv)

    wf = build(args.cache_dir, channels=args.channels, events=args.events, seed=args.seed)
    print(wf.describe())
    report = wf.run(args.cluster, n_procs=args.n_procs)
    if not report.ok:
        return 1
    table = wf.get_result("table")
    print("channel   gain (fit / true)      offset keV (fit / true)   rms keV")
    for ch in range(args.channels):
        print(
            f"{ch:>7}   {table['gain'][ch]:.4f} / {table['true_gain'][ch]:.4f}"
            f"       {table['offset'][ch]:+6.2f} / {table['true_offset'][ch]:+6.2f}"
            f"           {table['rms_kev'][ch]:.2f}"
        )
    verdict = wf.get_result("check")
    print(f"calibration {'OK' if verdict['ok'] else 'NOT OK'} (worst rms {verdict['worst_rms_kev']:.2f} keV)")
    print(f"summary: {report.summary_path}")
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
