"""Launch overhead of the `gyre` command: to the first task, and in total, for a pipeline that does nothing.

    python benchmarks/launch_overhead.py [--repeats 3] [--runs 4]

For the local model (`gyre run --procs 2`) and the mpi model (`mpiexec -n 4 gyre run --mpi`,
i.e. 2 workers), interleaved, it measures from the moment the command is started:
the time until the first task starts (from the report's task start times) and the whole
command's wall time. As a reference it also times `python -c "import gyre"`. Prints medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

PIPELINE = """
from gyre import Phase, PhaseResult, Pipeline

class Nothing(Phase):
    def run(self, payload, ctx):
        return PhaseResult({self.name: payload.path}, run=ctx.run)

def pipeline():
    here = __file__.rsplit("/", 1)[0]
    return Pipeline([Nothing("a"), Nothing("b"), Nothing("c")], [True] * 3, here + "/ws", here + "/runs", seed=1)
"""


def timed(command: list[str], cwd: Path, workspace: Path | None) -> tuple[float, float | None]:
    started = time.time()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=300)
    total = time.time() - started
    if workspace is None:
        return total, None
    report = json.loads((workspace / "report.json").read_text())
    first = min(r["started"] for r in report["records"] if r["started"] is not None)
    return total, first - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "zero.py").write_text(PIPELINE)
        (root / "runs").mkdir()
        for run in range(1, args.runs + 1):
            with h5py.File(root / "runs" / f"run_{run:04d}.h5", "w") as handle:
                handle["x"] = np.zeros(1)
        spec = ["zero.py:pipeline", "--runs", f"1-{args.runs}", "--no-display", "--force"]
        gyre = [sys.executable, "-m", "gyre.cli", "run", *spec]
        commands = {
            "import gyre": ([sys.executable, "-c", "import gyre"], None),
            "local (2 workers)": ([*gyre, "--procs", "2"], root / "ws"),
            "mpi (-n 4, 2 workers)": ([str(bin_dir / "mpiexec"), "-n", "4", *gyre, "--mpi"], root / "ws"),
        }
        totals: dict[str, list[float]] = {k: [] for k in commands}
        firsts: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.repeats):
            for name, (command, workspace) in commands.items():
                total, first = timed(command, root, workspace)
                totals[name].append(total)
                if first is not None:
                    firsts[name].append(first)
    print(
        f"{'model':<24} {'first task s':>13} {'total s':>9}   (medians of {args.repeats}, {args.runs} runs × 3 phases)"
    )
    for name in commands:
        first = f"{statistics.median(firsts[name]):.2f}" if firsts[name] else "-"
        print(f"{name:<24} {first:>13} {statistics.median(totals[name]):>9.2f}")


if __name__ == "__main__":
    main()
