"""The adaptive track-fit example runs, refits its poor fits and stops at the generation limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_adaptive_example(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples/adaptive/run.py"), "--workspace", str(tmp_path / "ws"), "--no-display"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "ws/report.json").read_text())
    assert report["ok"] and report["counts"]["fit"]["done"] == 12
    children = report["children"]
    ran = [c for c in children if c["status"] == "done"]
    refused = [c for c in children if c["status"] == "refused"]
    assert ran and max(c["generation"] for c in ran) == 3
    assert [c["generation"] for c in refused] == [4]
    assert "max_generations=3" in refused[0]["refusal"]
    for child in ran:  # each refit lives in its own workspace under its parent's
        assert Path(child["workspace"], "fit", f"run_{child['runs'][0]:04d}.h5").exists()
    # the table: every good final fit recovers the true slope
    rows = [line.split() for line in done.stdout.splitlines() if line[:3].strip().isdigit()]
    assert len(rows) == 12
    for row in rows:
        if row[5] == "True":
            assert abs(float(row[6]) - float(row[7].strip("()"))) < 0.02
