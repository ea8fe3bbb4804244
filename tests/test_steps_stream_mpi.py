"""Function steps and streaming stages under mpiexec: the same examples, on the mpi execution model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_execution_mpi import mpiexec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.mpi
@pytest.mark.slow
def test_steps_workflow_under_mpiexec(tmp_path):
    script = EXAMPLES / "steps" / "calibration.py"
    status, out, err, _ = mpiexec(4, str(script), "--cluster", "mpi", "--cache-dir", str(tmp_path / "cache"))
    assert status == 0, (out + err)[-3000:]
    assert "calibration OK" in out
    summary = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert summary["execution"].startswith("mpi (4 ranks")
    assert summary["counts"] == {"done": len(summary["steps"])}
    # a second job on the same cache computes nothing
    status, out, err, _ = mpiexec(4, str(script), "--cluster", "mpi", "--cache-dir", str(tmp_path / "cache"))
    assert status == 0, (out + err)[-3000:]
    again = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert again["counts"] == {"cached": len(summary["steps"])}


@pytest.mark.mpi
@pytest.mark.slow
def test_stream_under_mpiexec():
    script = EXAMPLES / "stream" / "monitor.py"
    status, out, err, _ = mpiexec(4, str(script), "--cluster", "mpi", "--events", "200")
    assert status == 0, (out + err)[-3000:]
    reference_status, reference, err2, _ = mpiexec(1, str(script), "--cluster", "sync", "--events", "200")
    assert reference_status == 0, err2[-3000:]
    # the histogram printed at the end is the same whatever the execution model
    tail = [line for line in out.splitlines() if "│" in line]
    assert tail
    assert tail == [line for line in reference.splitlines() if "│" in line]
