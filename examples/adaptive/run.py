"""Run the adaptive track-fit example: poorly converged fits are refitted, up to 3 generations deep.

python examples/adaptive/run.py                      # 12 runs on 2 worker processes
python examples/adaptive/run.py --runs 40 --procs 4 --workspace /scratch/me/tracks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tracks import generate_runs, make_pipeline

from gyre import PipelineReport, start_pipeline


def final_fits(report: PipelineReport) -> dict[int, dict[str, object]]:
    """Per run, the fit of its deepest refit (the top-level fit if none was needed)."""
    best: dict[int, dict[str, object]] = {}
    for outcome in (*report.outcomes, *report.child_outcomes):
        if outcome.phase != "fit" or outcome.result is None:
            continue
        current = best.get(outcome.run)
        if current is None or len(outcome.lineage) > int(str(current["generation"])):
            best[outcome.run] = dict(outcome.result.metadata)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gyre's adaptive track-fit example")
    parser.add_argument("--workspace", type=Path, default=Path("example-workspace-adaptive"))
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--max-generations", type=int, default=3)
    parser.add_argument("--no-display", action="store_true")
    args = parser.parse_args(argv)

    run_dir = args.workspace / "runs"
    if not (run_dir / f"run_{args.runs:04d}.h5").exists():
        generate_runs(run_dir, args.runs)
    pipeline = make_pipeline(args.workspace, run_dir)
    report = start_pipeline(
        pipeline,
        1,
        args.runs,
        n_procs=args.procs,
        disable_display=args.no_display,
        max_generations=args.max_generations,
    )
    print("\nrun  noise  generation  seeds  support  good   slope (true)")
    for run, fit in sorted(final_fits(report).items()):
        with h5py.File(run_dir / f"run_{run:04d}.h5", "r") as handle:
            truth, noise = float(handle.attrs["slope"]), float(handle.attrs["noise_fraction"])
        print(
            f"{run:>3}  {noise:5.2f}  {fit['generation']:>10}  {fit['n_seeds']:>5}  {float(fit['support']):7.3f}"  # type: ignore[arg-type]
            f"  {fit['good']!s:5}  {float(fit['slope']):+.3f} ({truth:+.3f})"  # type: ignore[arg-type]
        )
    print(f"artifacts, children/ and report.json are in {args.workspace.resolve()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
