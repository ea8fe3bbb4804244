"""Spyral's InterpSolverPhase (shared-memory mesh) on gyre with two workers; writes JSON.

python interp_solver.py DATA_DIR OUT_DIR RESULT_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
import spyral_setup
from spyral import InterpSolverPhase, SolverParameters

from gyre.compat.spyral import start_pipeline

cloudpickle.register_pickle_by_value(spyral_setup)


def main(data: Path, out: Path, result_path: Path) -> None:
    from distributed import Client, LocalCluster

    workspace = out / "gyre_solver"
    pipe = spyral_setup.pipeline("cluster", data, workspace)
    gas, pid = out / "gas.json", out / "pid.json"
    gas.write_text(json.dumps({"compound": [[1, 2, 2]], "pressure(Torr)": 600.0}))
    vertices = [[0.0, 0.0], [1.0e6, 0.0], [1.0e6, 10.0], [0.0, 10.0], [0.0, 0.0]]
    pid.write_text(json.dumps({"name": "p", "xaxis": "dEdx", "yaxis": "brho", "vertices": vertices, "Z": 1, "A": 1}))
    solver = SolverParameters(
        gas_data_path=gas,
        particle_id_filename=pid,
        ic_min_val=-10.0,
        ic_max_val=1.0e6,
        n_time_steps=300,
        interp_ke_min=0.1,
        interp_ke_max=40.0,
        interp_ke_bins=10,
        interp_polar_min=2.0,
        interp_polar_max=178.0,
        interp_polar_bins=15,
        fit_vertex_rho=True,
        fit_vertex_phi=True,
        fit_azimuthal=True,
        fit_method="lbfgsb",
    )
    phase = InterpSolverPhase(solver, spyral_setup.DETECTOR)
    pipe.phases.append(phase)
    pipe.active.append(True)
    n_runs = len(list((data / "pointcloud").glob("run_*.h5")))
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        report = start_pipeline(pipe, 1, n_runs, client=client, disable_display=True, seed=3)
    result = {
        "outcomes": {f"{o.phase}/{o.run}": {"status": o.status, "error": o.error} for o in report.outcomes},
        "files": sorted(p.name for p in (workspace / "InterpSolver").glob("*.parquet")),
        "segment_gone": not Path(f"/dev/shm/{phase.shared_mesh_name}").exists(),
    }
    result_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
