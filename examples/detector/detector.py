"""A small detector analysis in three phases: traces → point clouds → track inliers → fitted tracks.

- ``clouds``: per pad, subtract a pedestal estimated from randomly chosen time buckets and
  keep the pulse peak above threshold as a 3-D point (x, y, drift z, charge).
- ``clusters``: per event, find the track's points among noise hits with RANSAC (random
  pairs of points, the line with the most inliers wins).
- ``tracks``: per event, a least-squares 3-D line through the inliers: polar and azimuthal
  angles, residual RMS and the number of points.

Every phase writes one HDF5 artifact per run. ``clouds`` and ``clusters`` treat each event on
its own, so they declare a ``Split``: gyre may run a big run's events in parts (``ctx.events``)
and join the parts before ``tracks``. Their randomness comes from ``ctx.event_blocks()``, a
generator per fixed block of events, so a split run gives the same artifacts as a whole one.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, RunContext, Schema, Split
from gyre.io import iter_chunks, write_artifact

# a point cloud: the points of all events along `point`, and how many belong to each event
CLOUD_SCHEMA = Schema({"x": "float64", "y": "float64", "z": "float64", "q": "float64", "point_count": "int64"})


def _read_cloud(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The point columns of a cloud artifact and each point's event number."""
    with h5py.File(path, "r") as cloud:
        columns = {k: cloud[k][...] for k in ("x", "y", "z", "q")}
        event_of_point = np.repeat(cloud["event"][...], cloud["point_count"][...])
    return columns, event_of_point


def _write_cloud(
    ctx: RunContext, phase: str, columns: dict[str, np.ndarray], events: np.ndarray, counts: np.ndarray
) -> None:
    write_artifact(
        ctx.artifact_path(),
        {**{k: ("point", v) for k, v in columns.items()}, "point_count": ("event", counts)},
        coords={"event": events},
        run=ctx.run,
        phase=phase,
    )


class CloudPhase(Phase):
    """Pad traces → a point cloud per event (flat table of points with their event index)."""

    name = "clouds"
    split = Split(dataset="traces", events_per_block=25)
    incoming_schema = Schema({"traces": "float32", "pad_x": "float64", "pad_y": "float64"})
    outgoing_schema = CLOUD_SCHEMA

    def __init__(self, threshold: float = 25.0, pedestal_samples: int = 16) -> None:
        super().__init__()
        self.threshold = threshold
        self.pedestal_samples = pedestal_samples

    def create_assets(self, workspace: Path) -> bool:
        """Write the pad gain calibration (a fixed table here; a calibration run in real life)."""
        gains = 1.0 + 0.05 * np.sin(np.arange(64) * 0.7)
        np.save(self.asset_dir(workspace) / "pad_gains.npy", gains)
        return True

    def shared_data(self, workspace: Path) -> np.ndarray:
        """The pad gains, loaded once per worker process."""
        return np.load(self.asset_dir(workspace) / "pad_gains.npy")

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        assert ctx.events is not None  # the whole run, or this part's events
        gains = ctx.shared
        columns: dict[str, list[np.ndarray]] = {k: [np.zeros(0)] for k in ("x", "y", "z", "q")}
        counts = []
        with h5py.File(payload.artifacts["run"], "r") as run_file:
            traces = run_file["traces"]
            pad_x, pad_y = run_file["pad_x"][...], run_file["pad_y"][...]
            drift = float(run_file.attrs["drift_mm_per_sample"])
            ctx.progress.set_total(len(ctx.events))
            for block, rng in ctx.event_blocks():  # one generator per fixed block of events
                for event in block:
                    trace = traces[event].astype(np.float64)  # one event at a time: bounded memory
                    buckets = rng.choice(trace.shape[1], size=self.pedestal_samples, replace=False)
                    pedestal = np.median(trace[:, buckets], axis=1, keepdims=True)
                    signal = trace - pedestal
                    peak = signal.argmax(axis=1)
                    height = signal[np.arange(signal.shape[0]), peak]
                    hit = height > self.threshold
                    columns["x"].append(pad_x[hit])
                    columns["y"].append(pad_y[hit])
                    columns["z"].append(peak[hit] * drift)
                    columns["q"].append(height[hit] * gains[hit])
                    counts.append(int(hit.sum()))
                    ctx.progress.update()
        points = {k: np.concatenate(v) for k, v in columns.items()}
        events = np.arange(ctx.events.start, ctx.events.stop, dtype=np.int64)
        _write_cloud(ctx, self.name, points, events, np.array(counts, dtype=np.int64))
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class ClusterPhase(Phase):
    """Point cloud → the track's inlier points per event, found with RANSAC."""

    name = "clusters"
    split = Split(dataset="traces", events_per_block=25)
    incoming_schema = CLOUD_SCHEMA
    outgoing_schema = Schema({**CLOUD_SCHEMA.datasets, "inlier": "bool"})

    def __init__(self, tolerance: float = 6.0, trials: int = 60) -> None:
        super().__init__()
        self.tolerance = tolerance
        self.trials = trials

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        assert ctx.events is not None
        # this task's events, from the whole run's cloud or from the matching part of it
        chunks = list(iter_chunks(payload.artifacts["clouds"], [*"xyzq", "point_count"], events=ctx.events))
        columns = {k: np.concatenate([c[k] for c in chunks] or [np.zeros(0)]) for k in "xyzq"}
        counts = np.concatenate([c["point_count"] for c in chunks] or [np.zeros(0, dtype=np.int64)])
        points = np.stack([columns["x"], columns["y"], columns["z"]], axis=1)
        inlier = np.zeros(len(points), dtype=bool)
        ctx.progress.set_total(len(counts))
        # the points of event i are the slice offsets[i]:offsets[i + 1] (they are stored event by event)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for block, rng in ctx.event_blocks():
            for event in block:
                first, last = offsets[event - ctx.events.start], offsets[event - ctx.events.start + 1]
                inlier[first:last] = self._ransac(points[first:last], rng)
                ctx.progress.update()
        events = np.arange(ctx.events.start, ctx.events.stop, dtype=np.int64)
        _write_cloud(ctx, self.name, {**columns, "inlier": inlier}, events, counts)
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)

    def _ransac(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        best = np.zeros(len(points), dtype=bool)
        if len(points) < 3:
            return ~best
        for _ in range(self.trials):
            a, b = rng.choice(len(points), size=2, replace=False)
            direction = points[b] - points[a]
            norm = np.linalg.norm(direction)
            if norm == 0:
                continue
            rel = points - points[a]
            distance = np.linalg.norm(np.cross(rel, direction / norm), axis=1)
            candidate = distance < self.tolerance
            if candidate.sum() > best.sum():
                best = candidate
        return best


class TrackPhase(Phase):
    """Inlier points → one fitted straight track per event (angles, residual, point count)."""

    name = "tracks"
    incoming_schema = Schema({**CLOUD_SCHEMA.datasets, "inlier": "bool"})
    outgoing_schema = Schema(
        {"event": "int64", "theta": "float64", "phi": "float64", "rms": "float64", "n_points": "int64"}
    )

    def __init__(self, min_points: int = 3) -> None:
        super().__init__()
        self.min_points = min_points

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        columns, event_of_point = _read_cloud(payload.artifacts["clusters"])
        with h5py.File(payload.artifacts["clusters"], "r") as clusters:
            keep = clusters["inlier"][...]
        event = event_of_point[keep]
        points = np.stack([columns[k][keep] for k in ("x", "y", "z")], axis=1)
        rows = []
        # `event` is sorted (points are stored event by event): split where it changes
        starts = np.flatnonzero(np.diff(event, prepend=-1))
        for ev, mine in zip(event[starts], np.split(points, starts[1:])):
            if len(mine) < self.min_points:
                continue
            centre = mine.mean(axis=0)
            _, _, vt = np.linalg.svd(mine - centre)
            direction = vt[0] if vt[0][2] >= 0 else -vt[0]
            residual = np.linalg.norm(np.cross(mine - centre, direction), axis=1)
            theta = float(np.arccos(np.clip(direction[2], -1, 1)))
            phi = float(np.arctan2(direction[1], direction[0]))
            rows.append((ev, theta, phi, float(np.sqrt(np.mean(residual**2))), len(mine)))
        table = np.array(
            rows, dtype=[("event", "i8"), ("theta", "f8"), ("phi", "f8"), ("rms", "f8"), ("n_points", "i8")]
        )
        units = {"theta": "rad", "phi": "rad", "rms": "mm", "n_points": "1"}
        write_artifact(
            ctx.artifact_path(),
            {name: ("event", table[name], {"units": unit}) for name, unit in units.items()},
            coords={"event": table["event"]},
            run=ctx.run,
            phase=self.name,
        )
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"tracks": len(table)})


def make_pipeline(
    workspace: Path,
    run_dir: Path,
    *,
    seed: int | None = 7,
    active: tuple[bool, bool, bool] = (True, True, True),
) -> Pipeline:
    """The three-phase detector pipeline over the run files in ``run_dir``."""
    return Pipeline(
        [CloudPhase(), ClusterPhase(), TrackPhase()],
        list(active),
        workspace,
        run_dir,
        seed=seed,
        name="detector",
    )
