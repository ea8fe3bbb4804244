"""Resume cost: deciding that nothing of a finished job needs recomputing.

    python benchmarks/resume.py [--runs 1000] [--artifact-kib 64] [--repeats 3]

Builds a workspace of ``runs`` × 3 phases with a real ``start_pipeline`` (in-process, so no
cluster start is counted), each phase writing an artifact of ``artifact-kib`` KiB. Then,
``repeats`` times and interleaved, for both verification policies:

- plan: ``plan_resume`` alone — read every manifest record, fingerprint the configuration
  and the run files, and verify every artifact (SHA-256 of every byte, or size + mtime);
- rerun: the whole ``start_pipeline`` again, which must report every (phase, run) cached
  (workspace, lock, run discovery, plan, driver, report.json of every record).

Prints the medians, the artifact volume verified, and the ratio to the first (computing) run.
The page cache is warm (the artifacts were just written); on a cold parallel file system,
checksums read every byte from disk and the ``stat`` policy is the one that stays cheap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gyre import Phase, PhaseResult, Pipeline, ResumePolicy, RunContext, start_pipeline
from gyre.execution import SyncModel
from gyre.job.resume import plan_resume
from gyre.runs import discover_runs


class BytesPhase(Phase):
    """Writes ``kib`` KiB of random bytes per run (the previous artifact's first byte mixed in)."""

    def __init__(self, name: str, kib: int) -> None:
        super().__init__(name)
        self.kib = kib

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        first = next(iter(payload.artifacts.values())).read_bytes()[:1]
        data = ctx.rng.integers(0, 256, size=self.kib * 1024, dtype=np.uint8).tobytes()
        with ctx.artifact(f"run_{ctx.run:04d}.bin") as path:
            path.write_bytes(first + data)
        return PhaseResult({self.name: ctx.artifact_path(f"run_{ctx.run:04d}.bin")}, run=ctx.run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--artifact-kib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gyre-resume-") as tmp:
        root = Path(tmp)
        (root / "runs").mkdir()
        for run in range(1, args.runs + 1):
            with h5py.File(root / "runs" / f"run_{run:04d}.h5", "w") as handle:
                handle.create_dataset("signal", data=np.arange(10.0))
        phases = [BytesPhase(name, args.artifact_kib) for name in ("calibrate", "cluster", "fit")]
        pipeline = Pipeline(phases, [True] * 3, root / "ws", root / "runs", seed=1)
        model = SyncModel(raise_errors=True)

        started = time.perf_counter()
        first = start_pipeline(pipeline, 1, args.runs, cluster=model, disable_display=True)
        first_seconds = time.perf_counter() - started
        assert first.ok, first.summary()
        selection = discover_runs(root / "runs", 1, args.runs)
        volume = sum(p.stat().st_size for p in (root / "ws").glob("*/run_*.bin"))

        timings: dict[str, list[float]] = {
            f"{kind} {policy}": [] for kind in ("plan", "rerun") for policy in ("checksum", "stat")
        }
        for _ in range(args.repeats):
            for policy in ("checksum", "stat"):
                resume = ResumePolicy(verify=policy)
                t0 = time.perf_counter()
                plan = plan_resume(pipeline, selection, seed=1, policy=resume)
                timings[f"plan {policy}"].append(time.perf_counter() - t0)
                assert plan.count("cached") == 3 * args.runs, plan.notes()[:3]
                t0 = time.perf_counter()
                again = start_pipeline(pipeline, 1, args.runs, cluster=model, disable_display=True, resume=resume)
                timings[f"rerun {policy}"].append(time.perf_counter() - t0)
                counts = again.counts()
                assert all(c["cached"] == args.runs for c in counts.values()), counts

    print(f"resume cost: {args.runs} runs × 3 phases complete, {volume / 2**20:.0f} MiB of artifacts, "
          f"median of {args.repeats}")  # fmt: skip
    print(f"  first run (computing, in-process): {first_seconds:8.2f} s")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"  {name:<16} {median:8.3f} s   ({median / first_seconds:.3f} × first run)")
    target = statistics.median(timings["plan checksum"])
    print(f"  target: deciding with checksums under 5 s: {'met' if target < 5 else 'MISSED'} ({target:.2f} s)")


if __name__ == "__main__":
    sys.exit(main())
