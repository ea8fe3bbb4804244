"""A phase whose shared data is POSIX shared memory claimed per host, as Spyral's phases do (see compat/spyral/shm.py).

The first worker of the job on a host creates the segment (and writes its host name into it);
the host's other workers attach to it by name; the last one to leave removes it.
"""

from __future__ import annotations

import os
import socket
import time
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, RunContext, Schema
from gyre.compat.spyral.shm import HostSegments, claim_segments


class HostMeshPhase(Phase):
    """signal → its sum, with the name of the host that created the shared segment this worker read."""

    name = "mesh"
    incoming_schema = Schema({"signal": "float64"})
    outgoing_schema = Schema({"total": "float64"})

    def __init__(self, segment: str, pause: float = 0.5) -> None:
        super().__init__()
        self.segment = segment
        self.pause = pause

    def shared_data(self, workspace: Path) -> HostSegments:
        def create(handles: dict[str, SharedMemory]) -> None:
            handle = SharedMemory(name=self.segment, create=True, size=64)
            handle.buf[:64] = socket.gethostname().encode().ljust(64)
            handles["mesh"] = handle
            with open(Path(workspace) / f"created-on-{socket.gethostname()}.txt", "a") as record:
                record.write(f"{os.getpid()}\n")

        return claim_segments(f"{self.segment}/{self.name}", create, workspace=Path(workspace))

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        segment = SharedMemory(name=ctx.shared.segments[0])
        try:
            creator = bytes(segment.buf[:64]).decode().strip()
        finally:
            segment.close()
        with h5py.File(payload.artifacts["run"], "r") as handle:
            total = float(np.sum(handle["signal"][...]))
        time.sleep(self.pause)  # long enough for the runs to spread over every worker
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("total", data=np.array([total]))
            out.attrs["host"] = socket.gethostname()
            out.attrs["segment_host"] = creator
            out.attrs["pid"] = os.getpid()
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)
