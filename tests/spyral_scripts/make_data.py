"""Simulate small AT-TPC runs with attpc-engine: Spyral point clouds and GET trace files, nothing downloaded.

    python make_data.py OUT_DIR [N_RUNS] [EVENTS_PER_RUN]

Writes OUT_DIR/pointcloud/run_0001.h5 ... (attpc-engine's SpyralWriter: the format of
Spyral's PointcloudPhase output) and OUT_DIR/traces/run_0001.h5 ... (libattpc_merger 1.0
trace files built from the same simulated electrons and the GET response, for
Spyral's PointcloudPhase). 10Be(d,p)11Be at 93 MeV in 600 Torr D2; fixed seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
from attpc_engine import nuclear_map
from attpc_engine.detector import Config, DetectorParams, ElectronicsParams, PadParams, SpyralWriter
from attpc_engine.detector.response import get_response
from attpc_engine.detector.simulator import simulate
from attpc_engine.kinematics import (
    ExcitationGaussian,
    KinematicsPipeline,
    KinematicsTargetMaterial,
    PolarUniform,
    Reaction,
    run_kinematics_pipeline,
)
from spyral_utils.nuclear.target import GasTarget

SEED = 42


def main(root: Path, n_runs: int, per_run: int) -> None:
    clouds, traces = root / "pointcloud", root / "traces"
    clouds.mkdir(parents=True, exist_ok=True)
    traces.mkdir(parents=True, exist_ok=True)
    gas = GasTarget([(1, 2, 2)], 600.0, nuclear_map)
    kinematics = KinematicsPipeline(
        [
            Reaction(
                target=nuclear_map.get_data(1, 2),
                projectile=nuclear_map.get_data(4, 10),
                ejectile=nuclear_map.get_data(1, 1),
            )
        ],
        [ExcitationGaussian(0.0, 0.001)],
        [PolarUniform(0.0, np.pi)],
        beam_energy=93.0,
        target_material=KinematicsTargetMaterial(material=gas, z_range=(0.0, 1.0), rho_sigma=0.007),
    )
    kinematics.rng = np.random.default_rng(SEED)  # the engine's own generator is unseeded
    kinematics_path = root / "kinematics.h5"
    run_kinematics_pipeline(kinematics, n_runs * per_run, kinematics_path)
    config = Config(
        DetectorParams(
            length=1.0,
            efield=45000.0,
            bfield=2.85,
            mpgd_gain=175000,
            gas_target=gas,
            diffusion=0.277,
            fano_factor=0.2,
            w_value=34.0,
        ),
        ElectronicsParams(
            clock_freq=6.25, amp_gain=900, shaping_time=1000, micromegas_edge=10, windows_edge=560, adc_threshold=40
        ),
        PadParams(),
    )
    writer = SpyralWriter(clouds, config, max_events_per_file=per_run, first_run_number=1)
    response = get_response(config).copy()
    rng = np.random.default_rng(SEED + 1)
    files: dict[int, h5py.File] = {}
    with h5py.File(kinematics_path, "r") as handle:
        group = handle["data"]
        proton, mass = group.attrs["proton_numbers"], group.attrs["mass_numbers"]
        n_events, chunk = int(group.attrs["n_events"]), int(group.attrs["chunk_size"])
        products = [*range(2, len(proton), 2), len(proton) - 1]
        for event in range(n_events):
            data = group[f"chunk_{event // chunk}"][f"event_{event}"]
            vertex = np.array([data.attrs["vertex_x"], data.attrs["vertex_y"], data.attrs["vertex_z"]])
            cloud, labels = simulate(data[:].copy(), vertex, proton, mass, config, rng, products)
            if len(cloud) == 0:
                continue
            writer.write(cloud, labels, config, event)
            run = writer.run_number
            if run not in files:
                files[run] = h5py.File(traces / f"run_{run:04d}.h5", "w")
                files[run].create_group("events").attrs.update({"version": "libattpc_merger:1.0", "min_event": event})
            pads = np.unique(cloud[:, 0].astype(int))
            rows = np.zeros((len(pads), 517))
            rows[:, 4] = pads  # cobo, asad, aget, channel, pad, 512 samples
            for index, pad in enumerate(pads):
                signal = np.zeros(512)
                for _, bucket, electrons in cloud[cloud[:, 0] == pad]:
                    start = int(bucket)
                    signal[start:] += response[: 512 - start] * electrons
                rows[index, 5:] = np.clip(signal, 0, 4095) + rng.normal(0.0, 2.0, 512) + 300.0
            events = files[run]["events"]
            events.create_group(f"event_{event}").create_dataset("get_traces", data=rows.astype(np.int16))
            events.attrs["max_event"] = event + 1  # the merger 1.0 reader's range excludes max_event
    writer.close()
    for handle in files.values():
        handle.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3, int(sys.argv[3]) if len(sys.argv) > 3 else 12)
