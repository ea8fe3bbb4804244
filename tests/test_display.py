"""What a user sees of a job: skipped apart from finished, failures grouped, full names, report paths, progress."""

from __future__ import annotations

import io
import re
import time

import cloudpickle
import displayphases
import pytest
from displayphases import SlowLoopScale
from toyphases import ScalePhase, StatPhase, SumPhase

from gyre import Pipeline, SyncModel, start_pipeline
from gyre.progress import ProgressReporter
from gyre.result import Status, TaskOutcome
from gyre.watch.terminal import TerminalDisplay

cloudpickle.register_pickle_by_value(displayphases)


def outcome(phase: str, run: int, status: Status, error: str | None = None) -> TaskOutcome:
    failure = {"error": error, "error_type": "PhaseFailed", "traceback": f"Traceback of run {run}"} if error else {}
    return TaskOutcome(phase=phase, run=run, status=status, started=0.0, finished=0.5, **failure)


def a_job_with_alike_failures(display: TerminalDisplay) -> None:
    """20 runs: calibrate fails on 3-7 and 9-15 for one reason (12 runs), and on 18 for another; fit after it."""
    bad = [*range(3, 8), *range(9, 16)]
    for run in range(1, 21):
        if run in bad:
            message = f"phase 'calibrate' raised on run {run}: OSError: truncated (file /data/run_{run:04d}.h5)"
            display.task_done(outcome("calibrate", run, Status.FAILED, message))
            display.task_done(outcome("fit", run, Status.SKIPPED))
        elif run == 18:
            display.task_done(outcome("calibrate", run, Status.FAILED, "phase 'calibrate' raised on run 18: KeyError"))
            display.task_done(outcome("fit", run, Status.SKIPPED))
        else:
            display.task_done(outcome("calibrate", run, Status.DONE))
            display.task_done(outcome("fit", run, Status.DONE))


def test_batch_lines_count_skipped_runs_apart_from_finished_ones():
    display = TerminalDisplay(["calibrate", "fit"], 20, stream=io.StringIO(), interval=60)
    a_job_with_alike_failures(display)
    line = display.line()
    assert "calibrate 20/20 (13 failed)" in line
    assert "fit 7/20 · 13 skipped" in line


def test_bars_show_skipped_apart_full_phase_names_and_one_line_per_kind_of_failure(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    stream = io.StringIO()
    display = TerminalDisplay(["calibrate", "fit"], 20, stream=stream, force_terminal=True)
    display.start(dashboard_link=None, execution="test")
    a_job_with_alike_failures(display)
    display._progress.refresh()
    display.stop()
    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    assert re.search(r"calibrate .*20/20 .*13 failed", text)
    assert re.search(r"fit .* 7/20 · 13 skipped", text)
    # the twelve alike failures are one line, with their runs as ranges; the other kind is its own line
    assert "runs 3-7,9-15 (12): phase 'calibrate' raised on run 3: OSError: truncated" in text
    assert "run 18: phase 'calibrate' raised on run 18: KeyError" in text
    assert "run 4:" not in text and "calibrat " not in text


def test_the_report_text_groups_failures_and_keeps_phase_names_whole(tmp_path, run_dir):
    class LongNamedStat(StatPhase):
        name = "statistics_of_the_run"

    phases = [ScalePhase(fail_on=(1, 2, 3)), SumPhase(), LongNamedStat()]
    pipeline = Pipeline(phases, [True] * 3, tmp_path / "ws", run_dir, seed=3)
    report = start_pipeline(pipeline, 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    text = report.render()
    failures = [line for line in text.splitlines() if "bad calibration" in line]
    assert failures == ["    scale, runs 1-3 (3): phase 'scale' raised on run 1: ValueError: bad calibration for run 1"]
    header = next(line for line in text.splitlines() if line.strip().startswith("run "))
    assert header.split() == ["run", "scale", "sum", "statistics_of_the_run"]  # the grid's header, names whole


def test_a_job_that_computes_nothing_says_so_and_prints_where_its_report_is(tmp_path, run_dir, capsys):
    pipeline = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True] * 3, tmp_path / "ws", run_dir, seed=3)
    assert start_pipeline(pipeline, 1, 6, cluster=SyncModel(raise_errors=False)).ok
    first = capsys.readouterr().out
    assert "nothing to compute" not in first
    assert start_pipeline(pipeline, 1, 6, n_procs=2).ok
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "gyre: pipeline, runs 1-3,5-6: nothing to compute: 15 (phase, run)s cached; no cluster started"
    assert "runs × " not in out
    assert "execution: local (2 worker processes × 1 thread), not started: nothing to compute" in out
    workspace = tmp_path / "ws"
    assert lines[-1] == f"gyre: report written to {workspace / 'report.json'} and {workspace / 'report.html'}"


def test_progress_reported_at_the_top_of_a_slow_loop_is_sent_during_the_run():
    sent: list[dict] = []
    reporter = ProgressReporter("p", 1, sent.append, interval=0.1)
    reporter.start()
    reporter.set_total(30)
    for _ in range(30):
        reporter.update()  # the first update comes microseconds after the start, the work after it
        time.sleep(0.02)
    between = [m["completed"] for m in sent if 0 < m["completed"] < 30]
    assert len(between) >= 2, sent


@pytest.mark.slow
def test_a_batch_log_shows_the_in_run_percentage(client, tmp_path, run_dir, capsys, monkeypatch):
    monkeypatch.setitem(TerminalDisplay.__init__.__kwdefaults__, "interval", 0.2)
    pipeline = Pipeline([SlowLoopScale(steps=30, pause=0.05), SumPhase()], [True, True], tmp_path / "ws", run_dir)
    assert start_pipeline(pipeline, 1, 3, client=client).ok
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gyre [")]
    percentages = {int(p) for line in lines for p in re.findall(r"scale#\d (\d+)%", line)}
    assert percentages - {0, 100}, lines  # some lines show a run part-way through


def test_in_run_progress_reaches_the_display_on_the_sync_model(tmp_path, run_dir, monkeypatch):
    seen: list[dict] = []
    original = TerminalDisplay.run_progress

    def recording(self: TerminalDisplay, message: dict) -> None:
        seen.append(dict(message))
        original(self, message)

    monkeypatch.setattr(TerminalDisplay, "run_progress", recording)
    pipeline = Pipeline([SlowLoopScale(steps=12, pause=0.05), SumPhase()], [True, True], tmp_path / "ws", run_dir)
    assert start_pipeline(pipeline, 1, 2, cluster="sync", disable_display=True).ok
    scale = [m for m in seen if m["phase"] == "scale"]
    assert {m["run"] for m in scale} == {1, 2}
    assert any(0 < m["completed"] < 12 for m in scale), scale  # part-way through a run
    assert [m["completed"] for m in scale if m["run"] == 2][-1] == 12
