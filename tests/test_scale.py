"""Windowed submission, fused chains and the per-task costs that matter at thousands of runs."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import scalephases
from scalephases import NoopPhase, SleepPhase, touch_runs
from test_launch import datasets, make
from toyphases import ScalePhase

from gyre import Pipeline, SyncModel, start_pipeline
from gyre.execution.base import Completed, Engine
from gyre.job.chains import compile_chains
from gyre.job.options import JobOptions, default_window
from gyre.job.submit import Driver
from gyre.runs import discover_runs

cloudpickle.register_pickle_by_value(scalephases)


class CountingPhase(NoopPhase):
    """Counts how often it is pickled (imported by reference: this module is not sent by value)."""

    pickled = 0

    def __getstate__(self) -> dict[str, Any]:
        type(self).pickled += 1
        return dict(vars(self))


COMPARED = ("phase", "run", "status", "error", "error_type", "artifacts", "metadata", "lineage")


def comparable(report: Any) -> tuple[Any, ...]:
    """A report without what legitimately differs between executions (times, workers, tracebacks)."""
    records = [tuple(str(record[key]) for key in COMPARED) for record in report.records()]
    return report.counts(), report.failed_runs, report.runs, records


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = best = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def run_intervals(report: Any) -> list[tuple[float, float]]:
    spans: dict[int, tuple[float, float]] = {}
    for outcome in report.outcomes:
        start, end = spans.get(outcome.run, (outcome.started, outcome.finished))
        spans[outcome.run] = (min(start, outcome.started), max(end, outcome.finished))
    return list(spans.values())


@pytest.mark.parametrize("fuse", [False, True])
def test_window_keeps_at_most_that_many_runs_running(tmp_path, client, fuse):
    touch_runs(tmp_path / "runs", 24)
    phases = [SleepPhase(f"s{index}", 0.02) for index in range(3)]
    pipeline = Pipeline(phases, [True] * 3, tmp_path / "ws", tmp_path / "runs", seed=1)
    report = start_pipeline(pipeline, 1, 24, client=client, window=3, fuse=fuse, disable_display=True)
    assert report.ok
    overlap = max_overlap(run_intervals(report))  # from the tasks' own start and end times
    assert 2 <= overlap <= 3


def test_window_one_runs_one_run_at_a_time(tmp_path, client):
    touch_runs(tmp_path / "runs", 8)
    phases = [SleepPhase(f"s{index}", 0.02) for index in range(2)]
    pipeline = Pipeline(phases, [True] * 2, tmp_path / "ws", tmp_path / "runs", seed=1)
    report = start_pipeline(pipeline, 1, 8, client=client, window=1, disable_display=True)
    assert report.ok and max_overlap(run_intervals(report)) == 1


def test_results_and_reports_identical_with_and_without_window_and_fusion(tmp_path, run_dir, client):
    variants = {
        "all at once": {"window": 100},
        "window 1": {"window": 1},
        "fused": {"fuse": True},
        "fused window 2": {"fuse": True, "window": 2},
    }
    reports, data = {}, {}
    for name, options in variants.items():
        pipeline = make(tmp_path, run_dir, name=name.replace(" ", "-"), scale=ScalePhase(fail_on=(3,)))
        reports[name] = start_pipeline(pipeline, 1, 6, client=client, disable_display=True, **options)
        data[name] = datasets(pipeline.workspace_path)
    first = next(iter(variants))
    assert reports[first].failed_runs == [3] and reports[first].status("stat", 3) == "skipped"
    for name in variants:
        # artifacts paths differ by workspace: compare them relative to it
        got = comparable(reports[name])
        want = comparable(reports[first])
        assert str(got).replace(name.replace(" ", "-"), "W") == str(want).replace(first.replace(" ", "-"), "W"), name
        assert data[name] == data[first], name


def test_fused_on_the_sync_model_gives_the_same_report(tmp_path, run_dir):
    plain = start_pipeline(make(tmp_path, run_dir, name="a"), 1, 6, cluster="sync", disable_display=True)
    fused = start_pipeline(make(tmp_path, run_dir, name="b"), 1, 6, cluster="sync", fuse=True, disable_display=True)
    assert str(comparable(fused)).replace("/b/", "/a/") == str(comparable(plain))
    assert datasets(tmp_path / "a") == datasets(tmp_path / "b")


def test_fused_run_raises_into_the_caller_on_the_sync_model(tmp_path, run_dir):
    with pytest.raises(ValueError, match="bad calibration for run 5"):
        start_pipeline(make(tmp_path, run_dir, scale=ScalePhase(fail_on=(5,))), 1, 6, cluster=SyncModel(), fuse=True)


class _DyingEngine(Engine):
    """Every task ends with an error, as when its worker dies repeatedly."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def submit(self, fn: Any, *args: Any, key: str, priority: int = 0) -> Any:
        self.keys.append(key)
        return key

    def completed(self) -> Iterator[Completed]:
        while self.keys:
            yield Completed(self.keys.pop(0), error=RuntimeError("worker lost"))

    def run_everywhere(self, fn: Any, *args: Any) -> None:
        pass


def test_a_lost_fused_task_fails_its_first_phase_and_skips_the_rest(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    selection = discover_runs(run_dir, 1, 6)
    chains = compile_chains(pipeline, selection, seed=1, token="t0")
    engine = _DyingEngine()
    outcomes = Driver(engine, chains, JobOptions(window=2, fuse=True)).run()
    assert len(outcomes) == 5 * 3
    by_phase = {phase: {o.status for o in outcomes if o.phase == phase} for phase in ("scale", "sum", "stat")}
    assert by_phase == {"scale": {"failed"}, "sum": {"skipped"}, "stat": {"skipped"}}
    assert all("worker lost" in (o.error or "") for o in outcomes if o.status == "failed")


def test_fused_keys_name_the_phases_for_the_dashboard(tmp_path, run_dir):
    from dask.utils import key_split

    engine = _DyingEngine()
    chains = compile_chains(make(tmp_path, run_dir), discover_runs(run_dir, 1, 6), seed=1, token="0a1b2c3d")
    Driver(engine, chains, JobOptions(window=1, fuse=True))._submit_next()
    assert engine.keys == ["scale+sum+stat-0a1b2c3d-6"]  # the largest run first
    assert key_split(engine.keys[0]) == "scale+sum+stat"


def _driver(tmp_path: Path, phases: list[Any], n_runs: int, client: Any, **options: Any) -> Driver:
    from gyre.execution.futures import FuturesEngine

    touch_runs(tmp_path / "runs", n_runs)
    pipeline = Pipeline(phases, [True] * len(phases), tmp_path / "ws", tmp_path / "runs", seed=1)
    pipeline.create_workspace()
    chains = compile_chains(pipeline, discover_runs(tmp_path / "runs", 1, n_runs), seed=1, token="t")
    return Driver(FuturesEngine(client), chains, JobOptions(**options))


def test_short_phases_are_fused_once_the_first_ones_prove_short(tmp_path, client):
    driver = _driver(tmp_path, [NoopPhase("a"), NoopPhase("b")], 60, client, window=8)
    outcomes = driver.run()
    assert len(outcomes) == 120 and {o.status for o in outcomes} == {"done"}
    # 32 separate phases decide; the runs already in flight then stay as they are
    assert not driver.fusion.deciding and driver.fusion.fusing
    assert 60 - 16 - 8 <= driver.fused_runs <= 60 - 16


def test_phases_of_a_tenth_of_a_second_stay_separate_tasks(tmp_path, client):
    from gyre.job.fusion import FusionPolicy

    driver = _driver(tmp_path, [SleepPhase("a", 0.02), SleepPhase("b", 0.02)], 12, client, window=4)
    driver.fusion = FusionPolicy(None, below=0.01, sample=8)  # 20 ms phases are "long" here
    driver.run()
    assert not driver.fusion.deciding and not driver.fusion.fusing and driver.fused_runs == 0


def test_the_automatic_bound_grows_with_the_cluster():
    from gyre.job.fusion import auto_fuse_below

    assert auto_fuse_below(2) == auto_fuse_below(32) == 0.1  # dask's advice: tasks of 100 ms
    assert auto_fuse_below(1000) == pytest.approx(3.0)  # 1,000 threads: the scheduler's load


def test_fuse_false_never_fuses_and_true_always(tmp_path, client):
    never = _driver(tmp_path / "never", [NoopPhase("a"), NoopPhase("b")], 40, client, fuse=False)
    never.run()
    always = _driver(tmp_path / "always", [NoopPhase("a"), NoopPhase("b")], 40, client, fuse=True)
    always.run()
    assert (never.fused_runs, always.fused_runs) == (0, 40)


def test_each_phase_is_pickled_once_per_job_not_once_per_task(tmp_path):
    touch_runs(tmp_path / "runs", 50)
    pipeline = Pipeline([CountingPhase("a"), CountingPhase("b")], [True, True], tmp_path / "ws", tmp_path / "runs")
    chains = compile_chains(pipeline, discover_runs(tmp_path / "runs", 1, 50), seed=1, token="t")
    CountingPhase.pickled = 0
    blobs = [pickle.dumps(spec) for chain in chains for spec in chain.tasks]
    assert CountingPhase.pickled == 2
    again = pickle.loads(blobs[0])
    assert again.phase.name == "a" and again.run == chains[0].run.run
    pickle.dumps(again)  # a scheduler forwarding the task sends the same bytes on
    assert CountingPhase.pickled == 2


def test_default_window_grows_with_the_worker_threads():
    assert default_window(1) == default_window(2) == 256
    assert default_window(1000) == 8 * 1000


def test_two_thousand_runs_three_phases_fused(tmp_path, client):
    touch_runs(tmp_path / "runs", 2000)
    phases = [NoopPhase(f"p{index}") for index in range(3)]
    pipeline = Pipeline(phases, [True] * 3, tmp_path / "ws", tmp_path / "runs", seed=1)
    started = time.perf_counter()
    report = start_pipeline(pipeline, 1, 2000, client=client, fuse=True, disable_display=True)
    assert report.ok and len(report.outcomes) == 6000
    assert time.perf_counter() - started < 120  # ~25 s alone on a loaded 2-core machine
    assert (Path(report.workspace) / "report.json").stat().st_size > 0


@pytest.mark.slow
def test_two_thousand_runs_three_phases_one_task_each(tmp_path, client):
    touch_runs(tmp_path / "runs", 2000)
    phases = [NoopPhase(f"p{index}") for index in range(3)]
    pipeline = Pipeline(phases, [True] * 3, tmp_path / "ws", tmp_path / "runs", seed=1)
    started = time.perf_counter()
    report = start_pipeline(pipeline, 1, 2000, client=client, fuse=False, disable_display=True)
    assert report.ok and len(report.outcomes) == 6000
    assert time.perf_counter() - started < 180


def test_cli_run_takes_window_and_fuse(tmp_path):
    import json

    from gyre.cli import main

    touch_runs(tmp_path / "runs", 5)
    (tmp_path / "pipe.py").write_text(
        "from gyre import Pipeline\nfrom scalephases import NoopPhase\n"
        f"pipeline = Pipeline([NoopPhase('a'), NoopPhase('b')], [True, True], {str(tmp_path / 'ws')!r}, "
        f"{str(tmp_path / 'runs')!r}, seed=1)\n"
    )
    argv = ["run", f"{tmp_path / 'pipe.py'}:pipeline", "--runs", "1-5", "--sync", "--fuse", "--window", "2"]
    assert main([*argv, "--no-display"]) == 0
    report = json.loads((tmp_path / "ws" / "report.json").read_text())
    assert report["counts"]["b"]["done"] == 5
