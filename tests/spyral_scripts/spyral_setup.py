"""Spyral settings known to work with attpc-spyral 1.1.2, and helpers shared by the comparison scripts.

Known-good: ``overlap_join=None`` with a ``ContinuityJoinParameters`` (``OverlapJoinParameters``
crashes in 1.1.2), numpy < 2.2 (HDBSCAN with ``cluster_selection_epsilon > 0``).
``EstimationPhase`` of 1.1.2 cannot write its parquet file at all (its ``direction``
column holds an Enum); :class:`UserEstimationPhase` is the workaround a *user* can apply.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from spyral import (
    DEFAULT_MAP,
    ClusterParameters,
    ClusterPhase,
    ContinuityJoinParameters,
    DetectorParameters,
    EstimateParameters,
    EstimationPhase,
    FribParameters,
    GetParameters,
    HdbscanParameters,
    PadParameters,
    Pipeline,
    PointcloudPhase,
)

PAD = PadParameters(pad_geometry_path=DEFAULT_MAP, pad_time_path=DEFAULT_MAP, pad_scale_path=DEFAULT_MAP)
GET = GetParameters(
    baseline_window_scale=20.0, peak_separation=50.0, peak_prominence=20.0, peak_max_width=50.0, peak_threshold=40.0
)
FRIB = FribParameters(
    baseline_window_scale=100.0,
    peak_separation=50.0,
    peak_prominence=20.0,
    peak_max_width=500.0,
    peak_threshold=100.0,
    ic_delay_time_bucket=1100,
    ic_multiplicity=1,
)
DETECTOR = DetectorParameters(
    magnetic_field=2.85,
    electric_field=45000.0,
    detector_length=1000.0,
    beam_region_radius=25.0,
    micromegas_time_bucket=10.0,
    window_time_bucket=560.0,
    get_frequency=6.25,
    garfield_file_path=Path("/dev/null"),
    do_garfield_correction=False,
)
CLUSTER = ClusterParameters(
    min_cloud_size=50,
    hdbscan_parameters=HdbscanParameters(
        min_points=3, min_size_scale_factor=0.03, min_size_lower_cutoff=10, cluster_selection_epsilon=10.0
    ),
    tripclust_parameters=None,
    overlap_join=None,
    continuity_join=ContinuityJoinParameters(join_radius_fraction=0.3, join_z_fraction=0.2),
    direction_threshold=0.5,
    outlier_scale_factor=0.05,
)
ESTIMATE = EstimateParameters(min_total_trajectory_points=30, smoothing_factor=100.0)


def _int_direction() -> None:
    import spyral.phases.estimation_phase as module

    original = module.estimate_physics
    if getattr(original, "_int_direction", False):
        return

    def estimate_physics(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if result is not None:
            result.direction = int(result.direction.value)
        return result

    estimate_physics._int_direction = True  # type: ignore[attr-defined]
    module.estimate_physics = estimate_physics


class UserEstimationPhase(EstimationPhase):
    """EstimationPhase with a user-side fix for attpc-spyral 1.1.2 (Direction enum -> int), applied where it runs."""

    def run(self, payload: Any, workspace_path: Path, msg_queue: Any, rng: Any) -> Any:
        _int_direction()
        return super().run(payload, workspace_path, msg_queue, rng)


def pipeline(kind: str, data: Path, workspace: Path, *, fixed_estimation: bool = True) -> Pipeline:
    """A Spyral pipeline: "pointcloud" (traces -> clouds), "cluster" (engine clouds -> Cluster, Estimation), "full"."""
    estimation = (UserEstimationPhase if fixed_estimation else EstimationPhase)(ESTIMATE, DETECTOR)
    pointcloud = PointcloudPhase(GET, FRIB, DETECTOR, PAD)
    if kind == "pointcloud":
        return Pipeline([pointcloud], [True], workspace, data / "traces")
    if kind == "full":
        return Pipeline(
            [pointcloud, ClusterPhase(CLUSTER, DETECTOR), estimation], [True] * 3, workspace, data / "traces"
        )
    if kind == "cluster":
        (workspace / "Pointcloud").mkdir(parents=True, exist_ok=True)
        for path in sorted((data / "pointcloud").glob("run_*.h5")):
            shutil.copy(path, workspace / "Pointcloud" / path.name)
        phases = [pointcloud, ClusterPhase(CLUSTER, DETECTOR), estimation]
        return Pipeline(phases, [False, True, True], workspace, data / "pointcloud")
    raise ValueError(kind)


def h5_differences(a: Path, b: Path, *, sort_points: bool = False) -> dict[str, Any]:
    """Compare two HDF5 files: structure, attributes, and the largest difference of each dataset column.

    ``sort_points`` orders point-cloud rows by (pad, rounded time bucket) first: PointcloudPhase
    sorts points by z, and z moves with the rng-jittered centroid, so ties may swap rows.
    """
    problems: list[str] = []
    columns: dict[int, float] = {}
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a: list[str] = []
        names_b: list[str] = []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            problems.append(f"objects differ: {sorted(set(names_a) ^ set(names_b))[:5]}")
        for name in sorted(set(names_a) & set(names_b)):
            oa, ob = fa[name], fb[name]
            attrs_a = {k: np.asarray(v).tolist() for k, v in oa.attrs.items()}
            attrs_b = {k: np.asarray(v).tolist() for k, v in ob.attrs.items()}
            if attrs_a != attrs_b:
                problems.append(f"attributes of {name} differ: {attrs_a} != {attrs_b}")
            if isinstance(oa, h5py.Dataset):
                xa, xb = oa[()], ob[()]
                if xa.shape != xb.shape:
                    problems.append(f"{name}: shape {xa.shape} != {xb.shape}")
                    continue
                if xa.ndim == 2 and sort_points and xa.shape[1] == 8:
                    xa = xa[np.lexsort((np.round(xa[:, 6]), xa[:, 5]))]
                    xb = xb[np.lexsort((np.round(xb[:, 6]), xb[:, 5]))]
                if xa.ndim == 2:
                    for col in range(xa.shape[1]):
                        diff = float(np.max(np.abs(xa[:, col] - xb[:, col]))) if len(xa) else 0.0
                        columns[col] = max(columns.get(col, 0.0), diff)
                elif not np.array_equal(xa, xb):
                    problems.append(f"{name}: values differ")
    return {"problems": problems, "max_abs_diff_by_column": {str(k): v for k, v in sorted(columns.items())}}


def parquet_differences(a: Path, b: Path) -> dict[str, Any]:
    """Compare two parquet tables: columns, rows, largest difference per numeric column."""
    import polars as pl

    ta, tb = pl.read_parquet(a), pl.read_parquet(b)
    out: dict[str, Any] = {"columns_a": ta.columns, "columns_b": tb.columns, "rows_a": ta.height, "rows_b": tb.height}
    diffs: dict[str, float] = {}
    if ta.columns == tb.columns and ta.height == tb.height:
        ta, tb = ta.sort(["event", "cluster_index"]), tb.sort(["event", "cluster_index"])
        for col in ta.columns:
            xa, xb = ta[col].to_numpy(), tb[col].to_numpy()
            if np.issubdtype(xa.dtype, np.number):
                diffs[col] = float(np.nanmax(np.abs(xa.astype(float) - xb.astype(float)))) if len(xa) else 0.0
                if not np.array_equal(np.isnan(xa.astype(float)), np.isnan(xb.astype(float))):
                    diffs[col] = float("inf")
            else:
                diffs[col] = 0.0 if (xa == xb).all() else float("inf")
    out["max_abs_diff_by_column"] = diffs
    return out
