"""Run Spyral's own phases through spyral.start_pipeline and through gyre (2 workers); write a JSON comparison.

    python compare_builtin.py DATA_DIR OUT_DIR RESULT_JSON

Scenarios (runs 1..N of DATA_DIR made by make_data.py):
- pointcloud: PointcloudPhase on GET traces (consumes the rng: time-bucket centroids get +U(0,1)/1000);
- cluster: PointcloudPhase inactive (engine point clouds), ClusterPhase, EstimationPhase with the
  user-side workaround (UserEstimationPhase) -> deterministic, compared value by value;
- broken: the same with Spyral's unmodified EstimationPhase (attpc-spyral 1.1.2 cannot write its parquet).
Spyral runs first (it forks), then gyre on one LocalCluster of two worker processes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cloudpickle
import spyral_setup
from spyral import start_pipeline as spyral_start

cloudpickle.register_pickle_by_value(spyral_setup)


def spyral_side(kind: str, data: Path, out: Path, n_runs: int, *, fixed: bool) -> dict:
    workspace = out / f"spyral_{kind}{'' if fixed else '_broken'}"
    pipe = spyral_setup.pipeline(kind, data, workspace, fixed_estimation=fixed)
    started = time.perf_counter()
    spyral_start(pipe, run_min=1, run_max=n_runs, n_procs=1, disable_display=True)
    return {"workspace": str(workspace), "seconds": time.perf_counter() - started}


def gyre_side(kind: str, data: Path, out: Path, n_runs: int, client: object, *, fixed: bool) -> dict:
    from gyre.compat.spyral import start_pipeline

    workspace = out / f"gyre_{kind}{'' if fixed else '_broken'}"
    pipe = spyral_setup.pipeline(kind, data, workspace, fixed_estimation=fixed)
    started = time.perf_counter()
    report = start_pipeline(pipe, 1, n_runs, client=client, disable_display=True, seed=11)
    outcomes = [
        {"phase": o.phase, "run": o.run, "status": o.status, "error": o.error, "worker": o.worker}
        for o in report.outcomes
    ]
    return {"workspace": str(workspace), "seconds": time.perf_counter() - started, "outcomes": outcomes}


def files(workspace: Path, phase: str, pattern: str) -> list[str]:
    return sorted(p.name for p in (workspace / phase).glob(pattern))


def main(data: Path, out: Path, result_path: Path) -> None:
    n_runs = len(list((data / "pointcloud").glob("run_*.h5")))
    result: dict = {"runs": n_runs, "spyral": {}, "gyre": {}}
    # the unmodified EstimationPhase first: the user's workaround, once applied in a worker, stays there
    scenarios = (("cluster", False), ("pointcloud", True), ("cluster", True))
    for kind, fixed in scenarios:
        key = f"{kind}{'' if fixed else '_broken'}"
        result["spyral"][key] = spyral_side(kind, data, out, n_runs, fixed=fixed)
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        result["workers"] = len(client.scheduler_info()["workers"])
        for kind, fixed in scenarios:
            key = f"{kind}{'' if fixed else '_broken'}"
            result["gyre"][key] = gyre_side(kind, data, out, n_runs, client, fixed=fixed)
    comparisons: dict = {}
    for key, phase, pattern in (
        ("pointcloud", "Pointcloud", "run_*.h5"),
        ("cluster", "Cluster", "run_*.h5"),
        ("cluster", "Estimation", "run_*.parquet"),
    ):
        ws_s, ws_g = Path(result["spyral"][key]["workspace"]), Path(result["gyre"][key]["workspace"])
        names_s, names_g = files(ws_s, phase, pattern), files(ws_g, phase, pattern)
        entry: dict = {"files_spyral": names_s, "files_gyre": names_g, "runs": {}}
        for name in sorted(set(names_s) & set(names_g)):
            if name.endswith(".parquet"):
                entry["runs"][name] = spyral_setup.parquet_differences(ws_s / phase / name, ws_g / phase / name)
            else:
                sort = phase == "Pointcloud"
                entry["runs"][name] = spyral_setup.h5_differences(
                    ws_s / phase / name, ws_g / phase / name, sort_points=sort
                )
        comparisons[f"{key}/{phase}"] = entry
    broken_s = Path(result["spyral"]["cluster_broken"]["workspace"])
    logs = "".join(p.read_text(errors="replace") for p in sorted((broken_s / "log").glob("*.txt")))
    result["spyral_broken"] = {
        "cluster_files": files(broken_s, "Cluster", "run_*.h5"),
        "estimation_files": files(broken_s, "Estimation", "run_*.parquet"),
        "log_mentions_error": "cannot write 'Object' datatype" in logs,
    }
    result["comparisons"] = comparisons
    result_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
