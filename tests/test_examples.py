"""Every script in examples/ runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_detector_example(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/detector/run.py"),
            "--workspace",
            str(tmp_path / "ws"),
            "--runs",
            "5",
            "--mean-events",
            "8",
            "--procs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5/5 runs complete" in done.stdout
    report = json.loads((tmp_path / "ws/report.json").read_text())
    assert report["ok"] and report["counts"]["tracks"]["done"] == 5
    assert len(list((tmp_path / "ws/tracks").glob("run_*.h5"))) == 5


@pytest.mark.slow
def test_detector_graph_example_gives_one_histogram_on_every_scheduler(tmp_path):
    printed = {}
    for scheduler in ("processes", "distributed"):
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples/detector/graph.py"),
                *("--workspace", str(tmp_path / scheduler), "--runs", "4", "--mean-events", "8"),
                *("--scheduler", scheduler),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "one graph: 17 tasks for 4 runs" in done.stdout  # 4 runs × 3 phases, 4 runs, 1 histogram
        assert "run 3: clouds done, clusters done, tracks done" in done.stdout
        printed[scheduler] = done.stdout[done.stdout.index("theta [rad]") :]
        assert len(list((tmp_path / scheduler / "tracks").glob("run_*.h5"))) == 4
    assert printed["processes"] == printed["distributed"]
    assert "tracks from 4 runs" in printed["processes"]
