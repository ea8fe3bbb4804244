"""A straight-track fit whose poorly converged runs ask for a refit with tighter settings.

Each run file holds the hits of one track, ``y = intercept + slope * x`` with 0.5 of
resolution, buried in a run-dependent fraction of uniform noise hits. ``calibrate``
corrects the hits with a gain table (an asset) and keeps those inside the acceptance.
``fit`` seeds a robust fit with RANSAC (random hit pairs drawn from ``ctx.rng``), then
refines it by iteratively reweighted least squares with Tukey weights. On noisy runs a
few seeds often all miss the track: the fit then converges to noise, its support (the
fraction of hits on the line) is too low, and the phase spawns a child that refits the
run from the same calibrated hits with four times the seeds, more iterations and a
tighter tolerance — and so on, until the fit is good or the generation limit says no.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, RunContext, Schema

SIGMA = 0.5  # hit resolution
X_RANGE = (0.0, 100.0)
Y_RANGE = (-50.0, 150.0)


def generate_runs(directory: Path, n_runs: int, *, seed: int = 2024) -> None:
    """Run files ``run_0001.h5 ...`` with hits (raw ADC-like units) and the true track as attributes."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    noise_fractions = rng.permutation(np.linspace(0.1, 0.96, n_runs))
    for run in range(1, n_runs + 1):
        n_hits = int(rng.integers(600, 3000))
        slope, intercept = rng.uniform(-0.8, 0.8), rng.uniform(20.0, 80.0)
        n_noise = int(noise_fractions[run - 1] * n_hits)
        x = rng.uniform(*X_RANGE, size=n_hits)
        y = intercept + slope * x + rng.normal(0.0, SIGMA, size=n_hits)
        y[:n_noise] = rng.uniform(*Y_RANGE, size=n_noise)
        raw = np.column_stack([x, y / _gain(x)])
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle.create_dataset("hits", data=raw[rng.permutation(n_hits)])
            handle.attrs.update(slope=slope, intercept=intercept, noise_fraction=noise_fractions[run - 1])


def _gain(x: np.ndarray) -> np.ndarray:
    return 1.0 + 0.02 * np.sin(x / 15.0)


class CalibratePhase(Phase):
    """Raw hits → calibrated hits inside the acceptance (gain table built once as an asset)."""

    name = "calibrate"
    incoming_schema = Schema({"hits": "float64"})
    outgoing_schema = Schema({"hits": "float64"})

    def create_assets(self, workspace: Path) -> bool:
        grid = np.linspace(*X_RANGE, 1001)
        np.save(self.asset_dir(workspace) / "gain.npy", np.column_stack([grid, _gain(grid)]))
        return True

    def shared_data(self, workspace: Path) -> np.ndarray:
        return np.load(self.asset_dir(workspace) / "gain.npy")

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        with h5py.File(payload.artifacts["run"], "r") as handle:
            raw = handle["hits"][...]
        gain = np.interp(raw[:, 0], ctx.shared[:, 0], ctx.shared[:, 1])
        hits = np.column_stack([raw[:, 0], raw[:, 1] * gain])
        inside = (hits[:, 1] > Y_RANGE[0]) & (hits[:, 1] < Y_RANGE[1])
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("hits", data=hits[inside])
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata={"hits": int(inside.sum())})


@dataclass(frozen=True)
class FitResult:
    """A line fit: parameters, whether IRLS converged, in how many iterations, support and chi2/ndf."""

    intercept: float
    slope: float
    converged: bool
    iterations: int
    support: float
    chi2ndf: float


def robust_line_fit(
    hits: np.ndarray, rng: np.random.Generator, *, n_seeds: int, max_iter: int, tolerance: float, cut: float
) -> FitResult:
    """RANSAC seeding over ``n_seeds`` random hit pairs, then Tukey-weighted IRLS."""
    x, y = hits[:, 0], hits[:, 1]
    pairs = rng.integers(0, len(x), size=(n_seeds, 2))
    dx = x[pairs[:, 1]] - x[pairs[:, 0]]
    dx = np.where(np.abs(dx) < 1e-9, 1e-9, dx)
    slopes = (y[pairs[:, 1]] - y[pairs[:, 0]]) / dx
    intercepts = y[pairs[:, 0]] - slopes * x[pairs[:, 0]]
    residuals = np.abs(y[None, :] - intercepts[:, None] - slopes[:, None] * x[None, :])
    best = int(np.argmax((residuals < cut * SIGMA).sum(axis=1)))
    params = np.array([intercepts[best], slopes[best]])
    design = np.column_stack([np.ones_like(x), x])
    converged, iteration = False, 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        u = (y - design @ params) / (cut * SIGMA)
        weights = np.where(np.abs(u) < 1.0, (1.0 - u**2) ** 2, 0.0)
        if weights.sum() < 3:
            break
        normal = design.T @ (weights[:, None] * design)
        new = np.linalg.solve(normal, design.T @ (weights * y))
        step = np.max(np.abs(new - params))
        params = new
        if step < tolerance:
            converged = True
            break
    pulls = (y - design @ params) / SIGMA
    inliers = np.abs(pulls) < cut
    ndf = max(int(inliers.sum()) - 2, 1)
    return FitResult(
        intercept=float(params[0]),
        slope=float(params[1]),
        converged=converged,
        iterations=iteration,
        support=float(inliers.mean()),
        chi2ndf=float((pulls[inliers] ** 2).sum() / ndf),
    )


class FitPhase(Phase):
    """Calibrated hits → a robust line fit; a poor fit spawns a refit with tighter settings."""

    name = "fit"
    outgoing_schema = Schema({"params": "float64"})

    def __init__(self, *, n_seeds: int = 4, max_iter: int = 15, tolerance: float = 1e-4, cut: float = 3.0) -> None:
        super().__init__()
        self.n_seeds = n_seeds
        self.max_iter = max_iter
        self.tolerance = tolerance
        self.cut = cut
        self.min_support = 0.06

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        source = payload.path  # calibrated hits: this run's, or the parent's for a refit
        with h5py.File(source, "r") as handle:
            hits = handle["hits"][...]
        fit = robust_line_fit(
            hits, ctx.rng, n_seeds=self.n_seeds, max_iter=self.max_iter, tolerance=self.tolerance, cut=self.cut
        )
        good = fit.converged and fit.support >= self.min_support
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("params", data=np.array([fit.intercept, fit.slope]))
            out.attrs.update(converged=fit.converged, support=fit.support, chi2ndf=fit.chi2ndf, good=good)
        if not good:
            why = "no convergence" if not fit.converged else f"support {fit.support:.3f} < {self.min_support}"
            tighter = {"n_seeds": 4 * self.n_seeds, "max_iter": 2 * self.max_iter, "tolerance": self.tolerance / 10}
            ctx.spawn(f"{why} with {self.n_seeds} seeds", phases=["fit"], inputs=source.parent, params={"fit": tighter})
        metadata = {**vars(fit), "good": good, "n_seeds": self.n_seeds, "generation": ctx.generation}
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run, metadata=metadata)


def make_pipeline(workspace: Path, run_dir: Path, *, seed: int = 7) -> Pipeline:
    """calibrate → fit, with a fixed seed so the tree of refits is reproducible."""
    return Pipeline([CalibratePhase(), FitPhase()], [True, True], workspace, run_dir, seed=seed, name="tracks")
