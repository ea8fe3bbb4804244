"""Synthetic TPC run files: straight tracks through a pad plane, recorded as pad traces.

Each run file ``run_0001.h5`` holds ``traces`` (event × pad × sample, float32), the pad
positions ``pad_x``/``pad_y`` (mm) and the drift speed as an attribute. The number of
events per run is heavy-tailed (a few runs are many times larger than most), as in a
real experiment, and everything follows from one seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

N_SIDE = 8  # pads per side: an 8 × 8 pad plane
PITCH = 10.0  # mm between pad centres
N_SAMPLES = 128  # time buckets per trace
DRIFT_MM_PER_SAMPLE = 2.0


def pad_positions() -> tuple[np.ndarray, np.ndarray]:
    """Centres (x, y) of the pads, in mm, pad-major."""
    grid = (np.arange(N_SIDE) - (N_SIDE - 1) / 2) * PITCH
    x, y = np.meshgrid(grid, grid, indexing="xy")
    return x.ravel(), y.ravel()


def simulate_events(rng: np.random.Generator, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Traces of ``n_events`` straight tracks and their true (theta, phi) directions."""
    pad_x, pad_y = pad_positions()
    samples = np.arange(N_SAMPLES)
    traces = rng.normal(0.0, 2.0, size=(n_events, pad_x.size, N_SAMPLES)).astype(np.float32)
    traces += 20.0  # pedestal
    truth = np.empty((n_events, 2))
    for event in range(n_events):
        theta = rng.uniform(0.3, 1.2)
        phi = rng.uniform(-np.pi, np.pi)
        origin = rng.uniform(-10, 10, size=2)
        z0 = rng.uniform(30, 60)
        direction = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
        # distance of each pad centre from the projected track line
        d_xy = direction[:2] / max(np.linalg.norm(direction[:2]), 1e-9)
        rel = np.stack([pad_x - origin[0], pad_y - origin[1]], axis=1)
        along = rel @ d_xy
        perp = np.abs(rel[:, 0] * d_xy[1] - rel[:, 1] * d_xy[0])
        hit = (perp < 0.8 * PITCH) & (along > 0)
        z = z0 + along[hit] * direction[2] / max(np.linalg.norm(direction[:2]), 1e-9)
        t = z / DRIFT_MM_PER_SAMPLE
        amplitude = rng.uniform(80, 200, size=hit.sum()) * np.exp(-perp[hit] / PITCH)
        pulse = amplitude[:, None] * np.exp(-0.5 * ((samples[None, :] - t[:, None]) / 2.5) ** 2)
        traces[event, hit] += pulse.astype(np.float32)
        truth[event] = theta, phi
    return traces, truth


def heavy_tailed_sizes(rng: np.random.Generator, n_runs: int, mean_events: int) -> np.ndarray:
    """Events per run: Pareto-distributed, at least 2, capped at 12 × the mean."""
    raw = (rng.pareto(1.6, size=n_runs) + 1.0) * mean_events * 0.45
    return np.clip(raw, 2, 12 * mean_events).astype(int)


def write_run(path: Path, traces: np.ndarray, truth: np.ndarray, run: int) -> None:
    """Write one run file."""
    pad_x, pad_y = pad_positions()
    with h5py.File(path, "w") as handle:
        handle.create_dataset("traces", data=traces, chunks=(1, *traces.shape[1:]))
        handle.create_dataset("pad_x", data=pad_x)
        handle.create_dataset("pad_y", data=pad_y)
        handle.create_dataset("truth_theta_phi", data=truth)
        handle.attrs["run"] = run
        handle.attrs["drift_mm_per_sample"] = DRIFT_MM_PER_SAMPLE


def generate_runs(directory: Path, n_runs: int, *, mean_events: int = 40, seed: int = 2026) -> list[Path]:
    """Write ``run_0001.h5`` ... into ``directory`` with heavy-tailed sizes; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    master = np.random.default_rng(seed)
    sizes = heavy_tailed_sizes(master, n_runs, mean_events)
    paths = []
    for run, n_events in enumerate(sizes, start=1):
        rng = np.random.default_rng([seed, run])
        traces, truth = simulate_events(rng, int(n_events))
        path = directory / f"run_{run:04d}.h5"
        write_run(path, traces, truth, run)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--mean-events", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    paths = generate_runs(args.directory, args.runs, mean_events=args.mean_events, seed=args.seed)
    print(f"wrote {len(paths)} run files to {args.directory}")


if __name__ == "__main__":
    main()
