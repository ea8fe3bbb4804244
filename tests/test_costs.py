"""Learned costs: predictors chosen from a real manifest, the order they give, and deadlines that use them."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import faultphases
import h5py
import numpy as np
import pytest
from faultphases import OffsetSum, pipeline_module
from history import record_done as record
from toyphases import ScalePhase, StatPhase, SumPhase, calls, make_run_files

from gyre import CostModel, DeadlineReached, Manifest, Pipeline, SyncModel, discover_runs, start_pipeline
from gyre.cli import main
from gyre.cli.run import parse_walltime
from gyre.job.costs import run_events
from gyre.job.deadline import NOT_STARTED, Deadline, default_margin, slurm_end_time
from gyre.job.worker import TaskSpec, execute_phase
from gyre.loader import load_pipeline
from gyre.result import PhaseResult, Status

SYNC = SyncModel(raise_errors=False)


def make(tmp_path: Path, runs: Path, *, middle=None, seed: int = 11) -> Pipeline:
    return Pipeline([ScalePhase(), middle or SumPhase(), StatPhase()], [True] * 3, tmp_path / "ws", runs, seed=seed)


def padded_runs(directory: Path, events: dict[int, int], padding: dict[int, int]) -> None:
    """Run files with ``events`` rows of ``signal`` and ``padding`` values of an unrelated dataset (not events)."""
    directory.mkdir(parents=True, exist_ok=True)
    for run, n in events.items():
        with h5py.File(directory / f"run_{run:04d}.h5", "w") as handle:
            handle.create_dataset("signal", data=np.random.default_rng(run).normal(size=n))
            pad = handle.create_dataset("calibration", data=np.zeros(padding[run]))
            pad.dims[0].label = "channel"


def model(pipeline: Pipeline) -> CostModel:
    selection = discover_runs(pipeline.trace_path, 1, 99, pattern=pipeline.run_pattern)
    return CostModel.from_manifest(Manifest(pipeline.workspace_path), pipeline, selection)


def test_a_run_with_history_is_predicted_by_its_last_duration_whatever_the_seed(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    record(pipeline, 1, 2, 7.5, seed=999)  # another seed: the same cost
    record(pipeline, 0, 2, 0.5)
    costs = model(pipeline)
    assert costs.predict("sum", 2).seconds == pytest.approx(7.5)
    assert costs.predict("sum", 2).predictor == "last duration"
    assert costs.run_cost(2, ["scale", "sum"]) == pytest.approx(8.0)


def test_another_configuration_is_no_history(tmp_path, run_dir):
    record(make(tmp_path, run_dir, middle=OffsetSum(0.0)), 1, 2, 7.5)
    costs = model(make(tmp_path, run_dir, middle=OffsetSum(1.5)))
    prediction = costs.predict("sum", 2)
    assert prediction.predictor == "file size" and prediction.seconds is None
    assert model(make(tmp_path, run_dir, middle=OffsetSum(0.0))).predict("sum", 2).predictor == "last duration"


def test_the_rate_per_event_is_chosen_when_events_explain_the_durations(tmp_path):
    events = {1: 1000, 2: 4000, 3: 2000, 4: 8000, 5: 3000, 6: 500}
    padding = {1: 90000, 2: 100, 3: 40000, 4: 2000, 5: 70000, 6: 30000}  # sizes unrelated to events
    padded_runs(tmp_path / "runs", events, padding)
    pipeline = make(tmp_path, tmp_path / "runs")
    for run in (1, 2, 3, 4):
        record(pipeline, 1, run, 0.002 * events[run])
    costs = model(pipeline)
    assert run_events(tmp_path / "runs" / "run_0005.h5") == 3000
    prediction = costs.predict("sum", 5)
    assert prediction.predictor == "rate per event"
    assert prediction.seconds == pytest.approx(0.002 * 3000, rel=1e-6)
    # no history for the other phases: their file size, at the byte rate the history implies
    assert costs.predict("scale", 5).predictor == "file size" and costs.predict("scale", 5).seconds > 0


def test_the_rate_per_byte_is_chosen_when_sizes_explain_the_durations(tmp_path):
    events = {1: 1000, 2: 4000, 3: 2000, 4: 8000, 5: 3000}
    padding = {1: 90000, 2: 100, 3: 40000, 4: 2000, 5: 70000}
    padded_runs(tmp_path / "runs", events, padding)
    pipeline = make(tmp_path, tmp_path / "runs")
    sizes = {run: (tmp_path / "runs" / f"run_{run:04d}.h5").stat().st_size for run in events}
    for run in (1, 2, 3, 4):
        record(pipeline, 1, run, 1e-5 * sizes[run])
    prediction = model(pipeline).predict("sum", 5)
    assert prediction.predictor == "rate per byte"
    assert prediction.seconds == pytest.approx(1e-5 * sizes[5], rel=1e-6)


def test_runs_outside_the_selection_teach_the_rate(tmp_path):
    make_run_files(tmp_path / "runs", [1, 2, 3, 4])
    pipeline = make(tmp_path, tmp_path / "runs")
    for run in (1, 2):
        record(pipeline, 1, run, 0.01 * run)
    selection = discover_runs(pipeline.trace_path, 3, 4)
    costs = CostModel.from_manifest(Manifest(pipeline.workspace_path), pipeline, selection)
    assert costs.predict("sum", 4).predictor.startswith("rate per")


def test_without_history_the_order_is_by_file_size(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    costs = model(pipeline)
    selection = discover_runs(run_dir, 1, 6)
    assert costs.largest_first(selection.found) == selection.largest_first()
    assert costs.predict("stat", 6).predictor == "file size"
    assert costs.weights([("stat", 6)]) is None


def test_learned_costs_order_runs_against_their_size_and_cached_runs_go_last(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    durations = {1: 9.0, 2: 1.0, 3: 5.0, 5: 0.5, 6: 3.0}  # run 6 is the largest file, run 1 the smallest
    for run, seconds in durations.items():
        for index in range(3):
            record(pipeline, index, run, seconds)
    costs = model(pipeline)
    found = discover_runs(run_dir, 1, 6).found
    assert [r.run for r in costs.largest_first(found)] == [1, 3, 6, 2, 5]
    computed = {run: ["scale", "sum", "stat"] for run in (2, 3, 5, 6)}  # run 1 is cached: costs nothing
    assert [r.run for r in costs.largest_first(found, computed)] == [3, 6, 2, 5, 1]
    summary = costs.summary([("sum", 1), ("sum", 2), ("stat", 1)])
    assert summary == "costs predicted per (phase, run): 'sum' 2 by last duration; 'stat' 1 by last duration"


def test_a_second_job_runs_in_the_order_of_the_first_jobs_durations(tmp_path):
    make_run_files(tmp_path / "runs", list(range(1, 7)), events=200)  # all the same size
    slow = {1: 0.05, 2: 0.3, 3: 0.0, 4: 0.2, 5: 0.1, 6: 0.4}
    pipeline = make(tmp_path, tmp_path / "runs", middle=faultphases.PerRunSleep(slow))
    first = start_pipeline(pipeline, 1, 6, cluster=SYNC, disable_display=True, deadline=None)
    assert first.ok and not any("costs predicted" in n for n in first.notes)
    recorded = {r.run: r for r in Manifest(tmp_path / "ws").records()}
    assert recorded
    spent = {
        run: sum(
            (datetime.fromisoformat(r.finished) - datetime.fromisoformat(r.started)).total_seconds()
            for r in Manifest(tmp_path / "ws").records()
            if r.run == run
        )
        for run in range(1, 7)
    }
    second = start_pipeline(pipeline, 1, 6, cluster=SYNC, disable_display=True, force=True, deadline=None)
    order = sorted(range(1, 7), key=lambda run: second.outcome("scale", run).started)
    assert order == sorted(range(1, 7), key=lambda run: (-spent[run], run))
    assert "costs predicted per (phase, run): 'scale' 6 by last duration; 'sum' 6 by last duration" in "\n".join(
        second.notes
    )


def test_a_run_predicted_to_end_after_the_deadline_is_not_started(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    for run in (1, 2, 3, 5, 6):
        for index in range(3):
            record(pipeline, index, run, 100.0 if run != 2 else 0.01)
    with pytest.raises(DeadlineReached) as caught:
        start_pipeline(pipeline, 1, 6, cluster=SYNC, disable_display=True, force=True, deadline=60.0)
    report = caught.value.report
    assert caught.value.exit_code == 3 and "resumable" in str(caught.value)
    assert report.interrupted and report.outcome("stat", 2).status == Status.DONE
    for run in (1, 3, 5, 6):
        assert report.outcome("scale", run).status == Status.SKIPPED
        assert report.outcome("scale", run).reason == NOT_STARTED
    assert calls(tmp_path / "ws", "scale") == [2]
    assert not (tmp_path / "ws" / ".gyre" / "lock.json").exists()
    saved = json.loads((tmp_path / "ws" / "report.json").read_text())
    assert saved["interrupted"] is True and any("stopped at the deadline" in n for n in saved["notes"])


def test_gyre_run_exits_3_at_the_deadline(tmp_path, run_dir, capsys):
    module = pipeline_module(tmp_path, tmp_path / "ws", run_dir, delay=0.0)
    pipeline = load_pipeline(f"{module}:pipeline")
    for run in (1, 2, 3, 5, 6):
        for index in range(3):
            record(pipeline, index, run, 3600.0)
    code = main([
        "run", f"{module}:pipeline", "--runs", "1-6", "--sync", "--no-display", "--force", "--walltime", "30:00",
    ])  # fmt: skip
    assert code == 3, capsys.readouterr().err
    assert "stopped at the deadline" in capsys.readouterr().err
    assert main(["run", f"{module}:pipeline", "--runs", "1-6", "--sync", "--no-display", "--walltime", "none"]) == 0


def test_a_worker_does_not_start_a_task_after_its_start_by(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir)
    pipeline.create_workspace()
    spec = TaskSpec(
        phase=pipeline.phases[0], run=1, compute=True, workspace=tmp_path / "ws", seed=1, token="t",
        start_by=time.time() - 1,
    )  # fmt: skip
    outcome = execute_phase(spec, PhaseResult({"run": run_dir / "run_0001.h5"}, run=1))
    assert outcome.status == Status.SKIPPED and outcome.reason == NOT_STARTED
    assert calls(tmp_path / "ws", "scale") == []


def test_walltimes_are_read_as_slurm_writes_them():
    assert parse_walltime("3:55:00") == 3 * 3600 + 55 * 60
    assert parse_walltime("90") == 90 * 60
    assert parse_walltime("1:30") == 90
    assert parse_walltime("1-12") == 36 * 3600
    assert parse_walltime("2-00:30:00") == 48 * 3600 + 1800
    with pytest.raises(Exception, match="is not a time"):
        parse_walltime("soon")


def test_margins_and_deadlines():
    assert default_margin(20) == 10 and default_margin(600) == 60 and default_margin(4 * 3600) == 180
    deadline = Deadline(at=1_000.0, margin=50.0, source="test")
    assert deadline.stop_at == 950.0 and "less a 50 s margin" in deadline.describe()
    assert slurm_end_time({}) is None
    assert slurm_end_time({"SLURM_JOB_ID": "7", "SLURM_JOB_END_TIME": "1800000000"}) == 1_800_000_000.0


def run_gyre(module: Path, *args: str, env: dict[str, str]) -> tuple[int, float, str]:
    import subprocess
    import sys

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    return done.returncode, time.monotonic() - started, done.stdout + done.stderr


@pytest.mark.slow
def test_a_20_second_walltime_stops_in_time_and_the_next_job_does_the_rest(tmp_path, capsys):
    """About 50 s of work on 2 workers (25 s) under ``--walltime 0:20``: exit 3, then the rest with nothing redone."""
    from faultphases import gyre_env

    make_run_files(tmp_path / "runs", list(range(1, 25)), events=500)
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, tmp_path / "runs", delay=2.0, delay_variable="SLOW_SUM_DELAY")
    env = gyre_env()
    code, first, output = run_gyre(
        module, "--runs", "1-24", "--procs", "2", "--walltime", "0:20", "--deadline-margin", "5", env=env
    )
    assert code == 3, output
    assert "stopped at the deadline" in output, output
    report = json.loads((workspace / "report.json").read_text())
    assert report["interrupted"] is True
    assert not (workspace / ".gyre" / "lock.json").exists()
    done = {(r["phase"], r["run"]) for r in report["records"] if r["status"] == "done"}
    # (on a machine loaded enough that the cluster takes most of the 15 s to start, nothing may be done)
    assert done <= {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}
    assert len(done) < 72
    code, second, output = run_gyre(
        module, "--runs", "1-24", "--procs", "2", "--walltime", "none", env={**env, "SLOW_SUM_DELAY": "0"}
    )
    assert code == 0, output
    records = json.loads((workspace / "report.json").read_text())["records"]
    assert not {(r["phase"], r["run"]) for r in records if r["status"] == "done"} & done
    assert {(r["phase"], r["run"]) for r in records if r["status"] == "cached"} == done
    with capsys.disabled():
        print(f"\n20 s walltime: first job {first:.1f} s ({len(done)} of 72 done), second job {second:.1f} s")


def test_the_eta_weighs_what_is_left_by_the_predicted_costs():
    import io

    from gyre.result import TaskOutcome
    from gyre.watch.terminal import TerminalDisplay

    weights = {("fit", 1): 9.0, ("fit", 2): 1.0}
    display = TerminalDisplay(["fit"], 2, enabled=False, stream=io.StringIO(), weights=weights)
    display.start(dashboard_link=None, execution="test")
    display._started -= 10.0  # ten seconds in
    display.task_done(TaskOutcome(phase="fit", run=1, status=Status.DONE))
    assert display.eta() == pytest.approx(10.0 * 1.0 / 9.0, rel=0.05)  # the heavy one is done: little left
    plain = TerminalDisplay(["fit"], 2, enabled=False, stream=io.StringIO())
    plain.start(dashboard_link=None, execution="test")
    plain._started -= 10.0
    plain.task_done(TaskOutcome(phase="fit", run=1, status=Status.DONE))
    assert plain.eta() == pytest.approx(10.0, rel=0.05)  # by count: half done, as long again


def test_the_stop_at_the_deadline_comes_again_if_a_callback_swallowed_it():
    from gyre.job.deadline import stop_at

    deadline = Deadline(at=time.time() + 0.2, margin=0.0, source="test")
    swallowed = 0
    with pytest.raises(DeadlineReached), stop_at(deadline):
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:  # as an exception in a weakref callback or __del__ is: reported, then dropped
                time.sleep(0.01)
            except DeadlineReached:
                swallowed += 1
                if swallowed > 1:
                    raise
    assert swallowed == 2
