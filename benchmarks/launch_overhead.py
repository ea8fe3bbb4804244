"""Launch overhead of the `gyre` command: to the first task, and in total, for a pipeline that does nothing.

    python benchmarks/launch_overhead.py [--repeats 3] [--runs 4] [--slurm]

For the local model (`gyre run --procs 2`) and the mpi model (`mpiexec -n 4 gyre run --mpi`,
i.e. 2 workers), interleaved, it measures from the moment the command is started:
the time until the first task starts (from the report's task start times) and the whole
command's wall time. As a reference it also times `python -c "import gyre"`. Prints medians.

With ``--slurm`` it also times the slurm model (`gyre run --slurm-jobs 2`: two worker jobs
submitted with sbatch), on the one-node test Slurm of the test suite, which it starts for
the measurement (as root; see tests/slurm_cluster.py) unless ``SLURM_CONF`` names a running
one. The mpi command then runs outside Slurm, as before: the comparison is of what each
model adds before the first task, with an empty queue (a busy one adds its wait to both).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def slurm_environment(root: Path) -> Iterator[None]:
    """``SLURM_CONF`` for the commands: the one set already, or that of a test Slurm started in ``root``."""
    if os.environ.get("SLURM_CONF"):
        yield
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from slurm_cluster import SlurmCluster, install_packages

    cluster = SlurmCluster(root)
    try:
        install_packages()
        cluster.start()
        os.environ["SLURM_CONF"] = str(cluster.conf)
        yield
    finally:
        os.environ.pop("SLURM_CONF", None)
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--slurm", action="store_true", help="also time 2 Slurm worker jobs (dask-jobqueue)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        if args.slurm:
            stack.enter_context(slurm_environment(Path(scratch) / "slurm"))
        measure(args, Path(scratch))


def measure(args: argparse.Namespace, root: Path) -> None:
    bin_dir = Path(sys.executable).parent
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
    if args.slurm:
        jobs = ["--slurm-jobs", "2", "--slurm-memory", "500MB", "--slurm-walltime", "00:10:00"]
        commands["slurm (2 worker jobs)"] = ([*gyre, *jobs], root / "ws")
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
