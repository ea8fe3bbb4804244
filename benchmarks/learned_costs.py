"""Run order by learned costs vs by file size, on runs whose cost per event varies from run to run.

    python benchmarks/learned_costs.py [--runs 24] [--repeats 3] [--draws 4] [--work 20] [--cpu]

24 run files of log-uniformly spread sizes (300 to 1,000 events). Each run also has a cost
per event drawn from a seeded log-normal (σ = 1), independent of its size (beam conditions,
multiplicity): the run file's size says little about its cost. Two phases: ``clean`` (cheap,
in proportion to the events) and ``fit`` (events × the run's cost per event); ``--work`` sets
the total seconds of work. The phases sleep by default, so that the figures measure the order
of work and not the load of a shared machine; ``--cpu`` makes them spin instead.

On one cluster of 2 single-threaded workers (started before the clock), a first job
computes every run and leaves its durations in the manifest. Then, interleaved in each repeat:

- learned: the same workspace again with ``force=True``: runs go largest learned cost first
  (each run's own last duration);
- size: a fresh workspace (no history): runs go largest file first, as before learned costs;
- ideal: max(W / 2, L), W the total and L the longest run's measured seconds (of the learned job).

Each of ``--draws`` seeded sets of runs gets its medians; the closing lines give the ratios
learned/ideal (target <= 1.10) and learned/size (< 1) over the draws (median and worst): on
2 workers a poor order costs little on most draws and much on some.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gyre import LocalModel, Phase, PhaseResult, Pipeline, RunContext, Schema, start_pipeline
from gyre.report.model import PipelineReport

#: the share of a run's work in the cheap first phase
CLEAN_SHARE = 0.05
FUSE: bool | None = None  # gyre's default: phases this long are not fused


def wait(seconds: float, cpu: bool) -> None:
    """Spend ``seconds``: asleep, or spinning on the CPU."""
    if not cpu:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Clean(Phase):
    """A cheap phase in proportion to the events: copies ``adc``."""

    name = "clean"
    incoming_schema = Schema({"adc": "float64"})
    outgoing_schema = Schema({"clean": "float64"})

    def __init__(self, seconds_per_event: float, cpu: bool) -> None:
        super().__init__()
        self._rate = seconds_per_event  # private: timing, not configuration
        self._cpu = cpu

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        with h5py.File(payload.artifacts["run"], "r") as handle:
            adc = handle["adc"][...]
            factor = float(handle.attrs["cost_per_event"])
        wait(CLEAN_SHARE * self._rate * factor * len(adc), self._cpu)
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("clean", data=adc)
            out.attrs["cost_per_event"] = factor
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


class Fit(Phase):
    """The expensive phase: events × the run's own cost per event."""

    name = "fit"
    incoming_schema = Schema({"clean": "float64"})
    outgoing_schema = Schema({"total": "float64"})

    def __init__(self, seconds_per_event: float, cpu: bool) -> None:
        super().__init__()
        self._rate = seconds_per_event
        self._cpu = cpu

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        with h5py.File(payload.artifacts["clean"], "r") as handle:
            clean = handle["clean"][...]
            factor = float(handle.attrs["cost_per_event"])
        wait((1 - CLEAN_SHARE) * self._rate * factor * len(clean), self._cpu)
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("total", data=np.array([clean.sum()]))
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def make_runs(directory: Path, n_runs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run files with log-uniform event counts and a log-normal (σ = 1) cost per event each."""
    rng = np.random.default_rng(seed)
    events = np.exp(rng.uniform(np.log(300), np.log(1000), size=n_runs)).astype(int)
    factors = rng.lognormal(mean=0.0, sigma=1.0, size=n_runs)
    directory.mkdir(parents=True, exist_ok=True)
    for run, (n, factor) in enumerate(zip(events, factors), start=1):
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle.create_dataset("adc", data=rng.normal(size=int(n)))
            handle.attrs["cost_per_event"] = float(factor)
    return events, factors


def job(
    workspace: Path, run_dir: Path, n_runs: int, rate: float, cpu: bool, client, *, force: bool
) -> tuple[float, PipelineReport]:  # type: ignore[no-untyped-def]
    pipeline = Pipeline([Clean(rate, cpu), Fit(rate, cpu)], [True, True], workspace, run_dir, seed=1)
    started = time.perf_counter()
    report = start_pipeline(
        pipeline, 1, n_runs, client=client, disable_display=True, force=force, deadline=None, fuse=FUSE
    )
    elapsed = time.perf_counter() - started
    assert report.ok, report.summary()
    return elapsed, report


def span(report: PipelineReport) -> float:
    """Seconds from the first (phase, run)'s start to the last one's end: the makespan without the job's set-up."""
    starts = [o.started for o in report.outcomes if o.started is not None]
    ends = [o.finished for o in report.outcomes if o.finished is not None]
    return max(ends) - min(starts)


def modelled(n_runs: int, draws: int, seed: int) -> tuple[list[float], list[float]]:
    """Greedy list scheduling on 2 workers of seeded draws like the benchmark's: size order and exact-cost
    order over the ideal (what the order alone does, without any overhead)."""

    def makespan(costs: np.ndarray, order: np.ndarray) -> float:
        free = [0.0, 0.0]
        for index in order:
            worker = int(np.argmin(free))
            free[worker] += costs[index]
        return max(free)

    by_size, by_cost = [], []
    for draw in range(draws):
        rng = np.random.default_rng([seed, draw])
        events = np.exp(rng.uniform(np.log(300), np.log(1000), size=n_runs))
        costs = events * rng.lognormal(0.0, 1.0, size=n_runs)
        ideal = max(costs.sum() / 2, costs.max())
        by_size.append(makespan(costs, np.argsort(-events)) / ideal)
        by_cost.append(makespan(costs, np.argsort(-costs)) / ideal)
    return by_size, by_cost


def run_seconds(report: PipelineReport) -> dict[int, float]:
    """Each run's measured seconds (its phases' durations added up)."""
    seconds: dict[int, float] = {}
    for outcome in report.outcomes:
        if outcome.duration is not None and not outcome.lineage:
            seconds[outcome.run] = seconds.get(outcome.run, 0.0) + outcome.duration
    return seconds


def one_draw(root: Path, seed: int, args: argparse.Namespace, client) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One seeded set of runs: a first job, then ``repeats`` × (learned, size); the medians."""
    run_dir = root / f"runs{seed}"
    events, factors = make_runs(run_dir, args.runs, seed)
    rate = args.work / float(np.sum(events * factors))
    sizes = [(run_dir / f"run_{r:04d}.h5").stat().st_size for r in range(1, args.runs + 1)]
    rank = np.corrcoef(np.argsort(np.argsort(sizes)), np.argsort(np.argsort(events * factors)))[0, 1]
    print(
        f"seed {seed}: events {events.min()}-{events.max()}, cost per event x{factors.min():.2f}-x{factors.max():.2f}, "
        f"rank correlation of size and cost {rank:.2f}"
    )
    figures: dict[str, list[float]] = {
        "W": [], "L": [], "ideal": [], "learned": [], "size": [], "learned span": [], "size span": []
    }  # fmt: skip
    learned_ws = root / f"learned{seed}"
    first, _ = job(learned_ws, run_dir, args.runs, rate, args.cpu, client, force=False)
    notes: list[str] = []
    for repeat in range(args.repeats):
        learned, report = job(learned_ws, run_dir, args.runs, rate, args.cpu, client, force=True)
        notes = [n for n in report.notes if n.startswith("costs predicted")]
        fresh = root / f"size{seed}-{repeat}"
        size, size_report = job(fresh, run_dir, args.runs, rate, args.cpu, client, force=False)
        shutil.rmtree(fresh, ignore_errors=True)
        per_run = run_seconds(report)
        work, longest = sum(per_run.values()), max(per_run.values())
        values = (work, longest, max(work / 2, longest), learned, size, span(report), span(size_report))
        for key, value in zip(figures, values):
            figures[key].append(value)
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()), flush=True)
    median = {k: statistics.median(v) for k, v in figures.items()}
    print(f"  first job {first:.2f} s; the learned job's plan: {notes[0] if notes else '(no note)'}")
    print(
        f"  medians: ideal {median['ideal']:.2f} s, learned {median['learned']:.2f} s "
        f"({median['learned'] / median['ideal']:.3f} x ideal), size {median['size']:.2f} s "
        f"({median['size'] / median['ideal']:.3f} x ideal); from the first task to the last: learned "
        f"{median['learned span'] / median['ideal']:.3f}, size {median['size span'] / median['ideal']:.3f} x ideal",
        flush=True,
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description="gyre learned-costs benchmark")
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=4, help="seeded sets of runs (seed, seed + 1, ...)")
    parser.add_argument("--work", type=float, default=20.0, help="total seconds of work per job")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--cpu", action="store_true", help="spin on the CPU instead of sleeping")
    args = parser.parse_args()
    print(f"{args.runs} runs, 2 workers, {args.work:g} s of work per job, {'CPU' if args.cpu else 'sleep'}")
    with tempfile.TemporaryDirectory() as scratch, LocalModel(2).open() as engine:
        draws = [one_draw(Path(scratch), args.seed + d, args, engine.client) for d in range(args.draws)]
    print()
    print(f"over {len(draws)} draws (median of {args.repeats} repeats each), job wall time / ideal:")
    for what in ("", " span"):
        learned = [d["learned" + what] / d["ideal"] for d in draws]
        size = [d["size" + what] / d["ideal"] for d in draws]
        if what:
            print("from the first task's start to the last one's end (without the job's set-up and report) / ideal:")
        print(f"  learned/ideal  median {statistics.median(learned):.3f}, worst {max(learned):.3f}   (target <= 1.10)")
        print(f"  size/ideal     median {statistics.median(size):.3f}, worst {max(size):.3f}")
        ratios = [a / b for a, b in zip(learned, size)]
        print(f"  learned/size   median {statistics.median(ratios):.3f}, best {min(ratios):.3f}   (target < 1)")
    by_size, by_cost = modelled(args.runs, 2000, args.seed)
    print("modelled, the order alone (greedy list scheduling, no overhead), 2,000 draws like these:")
    for name, ratios in (("size order", by_size), ("learned order (exact costs)", by_cost)):
        ranked = sorted(ratios)
        print(
            f"  {name:<28} median {statistics.median(ranked):.3f}, 90th percentile "
            f"{ranked[int(0.9 * len(ranked))]:.3f}, worst {ranked[-1]:.3f} x ideal"
        )


if __name__ == "__main__":
    main()
