"""Watching a pipeline: progress events, the terminal display, the dashboards, the HTML summary."""

from __future__ import annotations

import io
import json
import re
import socket
import time
from pathlib import Path

import cloudpickle
import pytest
import watchphases
from toyphases import ScalePhase, StatPhase, SumPhase
from watchphases import CountingScale, ProbingScale

from gyre import LocalModel, Pipeline, start_pipeline
from gyre.cli import _parser
from gyre.execution.base import Engine
from gyre.execution.mpi import MPIModel
from gyre.job.chains import task_key
from gyre.result import TaskOutcome
from gyre.watch.board import RunBoard
from gyre.watch.publisher import dashboard_lines, gyre_page_link
from gyre.watch.scheduler_plugin import GyreDashboardPlugin
from gyre.watch.terminal import TerminalDisplay

cloudpickle.register_pickle_by_value(watchphases)


def pipeline_of(tmp_path: Path, run_dir: Path, first: ScalePhase, name: str = "ws") -> Pipeline:
    return Pipeline([first, SumPhase(), StatPhase()], [True, True, True], tmp_path / name, run_dir, seed=5)


def test_progress_events_reach_the_driver_with_their_totals(client, tmp_path, run_dir, monkeypatch):
    seen: list[dict] = []
    original = TerminalDisplay.run_progress

    def recording(self: TerminalDisplay, message: dict) -> None:
        seen.append(dict(message))
        original(self, message)

    monkeypatch.setattr(TerminalDisplay, "run_progress", recording)
    report = start_pipeline(
        pipeline_of(tmp_path, run_dir, CountingScale(units=300)), 1, 6, client=client, disable_display=True
    )
    assert report.ok
    counted = [m for m in seen if m["phase"] == "scale"]
    assert {m["run"] for m in counted} == {1, 2, 3, 5, 6}
    for run in (1, 2, 3, 5, 6):
        last = [m for m in counted if m["run"] == run][-1]
        assert last["total"] == 300 * run
        assert last["completed"] == 300 * run
    # every computed (phase, run) announced its start, including phases that report nothing else
    assert {(m["phase"], m["run"]) for m in seen if m["completed"] == 0} >= {
        (phase, run) for phase in ("scale", "sum", "stat") for run in (1, 2, 3, 5, 6)
    }


def outcome(phase: str, run: int, status: str, error: str | None = None, **extra: object) -> TaskOutcome:
    return TaskOutcome(phase=phase, run=run, status=status, error=error, started=0.0, finished=0.5, **extra)


def test_non_terminal_display_prints_a_line_every_interval():
    stream = io.StringIO()
    display = TerminalDisplay(["scale", "sum"], 3, stream=stream, interval=0.15)
    assert not display.terminal
    display.start(dashboard_link="http://127.0.0.1:1/status", execution="test")
    display.task_done(outcome("scale", 1, "done"))
    display.task_done(outcome("scale", 2, "failed", "boom"))
    display.run_progress({"phase": "scale", "run": 3, "completed": 25, "total": 100})
    time.sleep(0.7)
    display.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "gyre: 3 runs × 2 phases on test"
    assert lines[1] == "gyre: dask dashboard at http://127.0.0.1:1/status"
    periodic = [line for line in lines if line.startswith("gyre [")]
    assert len(periodic) >= 3  # at least two from the timer, and the last one
    assert "scale 2/3 (1 failed) | sum 0/3" in periodic[0]
    assert "running: scale#3 25%" in periodic[0]
    assert "ETA" in periodic[0]
    assert not any("\x1b[" in line for line in lines)  # no terminal control codes in a log file


def test_terminal_display_draws_bars_failures_and_running_runs():
    stream = io.StringIO()
    display = TerminalDisplay(["scale", "sum"], 2, stream=stream, force_terminal=True)
    display.start(dashboard_link=None, execution="test", notes=["dask dashboard at X", "gyre page at Y"])
    display.run_progress({"phase": "sum", "run": 2, "completed": 40, "total": 80})
    display.task_done(outcome("scale", 1, "failed", "boom"))
    display.task_done(outcome("scale", 2, "done"))
    display._progress.refresh()
    text = stream.getvalue()
    display.stop()
    assert text.count("gyre: dask dashboard at X") == 1
    assert "gyre page at Y" in text
    assert "1 failed" in text and "\x1b[31m" in text  # red
    assert "run 2" in text and "40/80" in text


def test_late_progress_does_not_revive_a_finished_run():
    display = TerminalDisplay(["scale"], 1, enabled=False)
    board = RunBoard(pipeline="p", key="k", phases=["scale"], runs=[1])
    for listener in (display, board):
        listener.task_done(outcome("scale", 1, "done"))
        listener.run_progress({"phase": "scale", "run": 1, "completed": 5, "total": 5})
    assert display.running == {}
    assert display.progress[("scale", 1)]["completed"] == 5
    assert board.state("scale", 1) == "done"


def test_disable_display_prints_nothing(tmp_path, run_dir, capsys):
    report = start_pipeline(pipeline_of(tmp_path, run_dir, ScalePhase()), 1, 3, cluster="sync", disable_display=True)
    assert report.ok
    assert capsys.readouterr().out == ""
    assert (tmp_path / "ws" / "report.html").exists()


def test_board_counts_states_failures_and_children():
    board = RunBoard(pipeline="p", key="k", phases=["a", "b"], runs=[1, 2, 3], missing=[4])
    assert board.snapshot()["grid"] == {"a": "wwwm", "b": "wwwm"}
    board.run_progress({"phase": "a", "run": 1, "completed": 0, "total": None})
    board.task_done(outcome("a", 2, "failed", "ValueError: no"))
    board.task_done(outcome("b", 2, "skipped"))
    board.task_done(outcome("a", 3, "cached"))
    board.task_done(outcome("a", 1, "done", lineage=("p", "a-1")))  # an adaptive child's outcome
    snap = board.snapshot()
    assert snap["grid"] == {"a": "rfcm", "b": "wswm"}
    assert snap["counts"]["a"] == {
        "waiting": 0,
        "running": 1,
        "done": 0,
        "cached": 1,
        "failed": 1,
        "skipped": 0,
        "missing": 1,
        "excluded": 0,
    }
    assert snap["failures"] == [
        {
            "phase": "a",
            "run": 2,
            "error": "ValueError: no",
            "error_type": None,
            "lineage": [],
            "worker": None,
            "traceback": "",
        }
    ]
    assert snap["children"] == [{"lineage": ["p", "a-1"], "generation": 2, "counts": {"done": 1}}]
    [running] = snap["running"]
    assert {k: running[k] for k in ("phase", "run", "completed", "total", "worker")} == {
        "phase": "a",
        "run": 1,
        "completed": 0,
        "total": None,
        "worker": None,
    }
    version = board.version
    board.finish()
    assert board.version > version
    assert board.snapshot()["grid"]["a"] == "wfcm"  # a run that never finished is not "running" any more
    json.dumps(board.snapshot())


def test_plugin_keeps_the_latest_pipelines_and_serves_the_selected_one():
    plugin = GyreDashboardPlugin(keep=2)
    for key in ("one", "two", "three"):
        plugin.receive(RunBoard(pipeline=key.upper(), key=key, phases=["a"], runs=[1]).snapshot())
    state = plugin.state()
    assert [p["id"] for p in state["pipelines"]] == ["two", "three"]
    assert state["board"]["id"] == "three"
    assert plugin.state("two")["board"]["id"] == "two"
    assert plugin.state("gone")["board"]["id"] == "three"
    assert GyreDashboardPlugin().state() == {"pipelines": [], "board": None, "html": {}}


@pytest.mark.parametrize("phase", ["scale", "reco", "track_fit", "phase2", "fit-tracks"])
@pytest.mark.parametrize("token", ["deadbeef", "0a1b2c3d", "abcdefab"])
def test_task_keys_group_under_their_phase_on_the_dashboard(phase, token):
    from dask.utils import key_split

    assert key_split(task_key(phase, token, 17)) == phase


class _LinkEngine(Engine):
    dashboard_link = "http://127.0.0.1:40213/status"

    def submit(self, fn, *args, key, priority=0):  # pragma: no cover - never called
        raise NotImplementedError

    def completed(self):  # pragma: no cover - never called
        raise NotImplementedError

    def run_everywhere(self, fn, *args):  # pragma: no cover - never called
        raise NotImplementedError


def test_mpi_announcement_names_rank_zero_host_and_the_tunnel():
    model = MPIModel()
    model.hosts = ["node-a", "node-a", "node-b"]
    model.dashboard_port = 40213
    lines = dashboard_lines(model, _LinkEngine(), gyre_page=True)
    assert lines[0] == "dask dashboard on node-a (rank 0) at http://127.0.0.1:40213/status"
    assert lines[1] == "gyre page on node-a (rank 0) at http://127.0.0.1:40213/gyre"
    assert "ssh -L 8787:127.0.0.1:40213 -J <login-node> node-a" in lines[2]
    open_model = MPIModel(dashboard_address=":8787")
    open_model.hosts, open_model.dashboard_port = ["node-a"] * 3, 8787
    assert open_model.dashboard_tunnel_hint() is None
    assert gyre_page_link("http://h:1/status") == "http://h:1/gyre"
    assert gyre_page_link(None) is None


def test_cli_takes_the_performance_report_option():
    args = _parser().parse_args(["run", "p.py:pipeline", "--runs", "1-3", "--performance-report"])
    assert args.performance_report is True
    args = _parser().parse_args(["run", "p.py:pipeline", "--runs", "1-3", "--performance-report", "perf.html"])
    assert args.performance_report == "perf.html"
    assert _parser().parse_args(["run", "p.py:pipeline", "--runs", "1-3"]).performance_report is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_local_model_announces_once_serves_the_gyre_page_and_writes_reports(tmp_path, run_dir, capsys):
    port = free_port()
    probe = ProbingScale(f"http://127.0.0.1:{port}/gyre/state.json", probe_run=1, fail_on=(3,))
    pipeline = pipeline_of(tmp_path, run_dir, probe)
    model = LocalModel(2, dashboard_address=f"127.0.0.1:{port}")
    report = start_pipeline(pipeline, 1, 6, cluster=model, performance_report=True)
    out = capsys.readouterr().out
    link = f"http://127.0.0.1:{port}/status"
    assert out.count("dask dashboard at ") == 1 and f"gyre: dask dashboard at {link}" in out
    assert out.count(f"gyre: gyre page at http://127.0.0.1:{port}/gyre") == 1
    assert link in (pipeline.workspace_path / "log" / "driver.log").read_text()
    # the page answered while the pipeline ran, with the full grid of this pipeline
    seen = json.loads((pipeline.workspace_path / "probe.json").read_text())
    board = seen["board"]
    assert board["pipeline"] == pipeline.name and board["finished"] is None
    assert board["phases"] == ["scale", "sum", "stat"] and board["runs"] == [1, 2, 3, 4, 5, 6]
    assert board["grid"]["scale"][3] == "m"
    assert board["grid"]["scale"][0] == "r"  # run 1 is computing: it is the one asking
    # after the run: performance report and static summary with the failure
    assert report.failed_runs == [3]
    performance = (pipeline.workspace_path / "performance-report.html").read_text()
    assert "Dask Performance Report" in performance
    html = (pipeline.workspace_path / "report.html").read_text()
    assert "bad calibration for run 3" in html
    assert html.count('class="gyre-cell" data-run=') == 18
    assert re.findall(r'data-run="(\d+)" data-state="failed"', html) == ["3"]
    assert len(re.findall(r'data-run="3" data-state="skipped"', html)) == 2


def test_a_run_that_has_not_reported_yet_shows_no_percentage():
    display = TerminalDisplay(["scale"], 3, stream=io.StringIO(), interval=60)
    display.run_progress({"phase": "scale", "run": 1, "completed": 0, "total": 100})  # its start
    display.run_progress({"phase": "scale", "run": 2, "completed": 40, "total": 100})
    line = display.line()
    assert "running: scale#2 40%, scale#1" in line and "0%" not in line.replace("40%", "")
    display.task_done(outcome("scale", 2, "done"))
    display.task_done(outcome("scale", 1, "done"))
    display.task_done(outcome("scale", 3, "done"))
    assert "ETA" not in display.line()  # everything finished
