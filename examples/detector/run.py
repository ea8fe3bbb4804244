"""Run the detector example end to end: generate run files, run the pipeline on a local cluster, print the report.

python examples/detector/run.py                 # 12 runs on 2 worker processes
python examples/detector/run.py --runs 40 --procs 4 --workspace /scratch/me/detector
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detector import make_pipeline
from generate import generate_runs

from gyre import start_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gyre's detector example")
    parser.add_argument("--workspace", type=Path, default=Path("example-workspace"))
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--mean-events", type=int, default=40)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--no-display", action="store_true")
    args = parser.parse_args(argv)

    run_dir = args.workspace / "runs"
    if not (run_dir / f"run_{args.runs:04d}.h5").exists():
        generate_runs(run_dir, args.runs, mean_events=args.mean_events)
    pipeline = make_pipeline(args.workspace, run_dir)
    report = start_pipeline(pipeline, 1, args.runs, n_procs=args.procs, disable_display=args.no_display)
    print(f"artifacts and report.json are in {args.workspace.resolve()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
