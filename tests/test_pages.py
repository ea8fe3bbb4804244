"""The drawing of the gyre page and report.html, without a browser: board data, sections, SVG pictures."""

from __future__ import annotations

import json
import re
import time
import urllib.request

from pagedata import synthetic_report

from gyre import Status, TaskOutcome
from gyre.report.html import final_board, render_html_report
from gyre.watch.board import RunBoard
from gyre.watch.grid import grid_width
from gyre.watch.pictures import histograms_svg, seconds_text, timeline_svg
from gyre.watch.publisher import BoardPublisher, dashboard_lines
from gyre.watch.scheduler_plugin import GyreDashboardPlugin
from gyre.watch.sections import CLOCK_SECTIONS, SECTION_IDS, pace, render_sections


def ran(phase: str, run: int, worker: str, start: float, end: float, status: Status = Status.DONE) -> TaskOutcome:
    error = f"ValueError: bad calibration for run {run}" if status is Status.FAILED else None
    trace = f"Traceback (most recent call last):\nValueError: bad calibration for run {run}\n" if error else None
    return TaskOutcome(
        phase=phase, run=run, status=status, error=error, error_type="ValueError" if error else None,
        traceback=trace, started=start, finished=end, worker=worker,
    )  # fmt: skip


def small_board() -> RunBoard:
    board = RunBoard(pipeline="p", key="k", phases=["reco", "fit"], runs=[1, 3, 5, 6], missing=[4], skipped=[2])
    board.started = 100.0
    board.task_done(ran("reco", 1, "tcp://10.0.0.1:1", 100.5, 101.5))
    board.task_done(ran("reco", 3, "tcp://10.0.0.2:2", 100.5, 101.0, Status.FAILED))
    board.task_done(TaskOutcome(phase="fit", run=3, status=Status.SKIPPED))
    board.task_done(ran("fit", 1, "tcp://10.0.0.1:1", 101.5, 102.0))
    board.task_done(ran("reco", 5, "tcp://10.0.0.2:2", 101.0, 103.0, Status.FAILED))
    board.run_progress(
        {"phase": "reco", "run": 6, "completed": 2, "total": 10, "worker": "tcp://10.0.0.1:1", "at": 102.0}
    )
    return board


def test_skipped_runs_keep_their_place_in_the_grid_as_excluded():
    board = small_board()
    snap = board.snapshot()
    assert snap["runs"] == [1, 2, 3, 4, 5, 6]
    assert snap["grid"] == {"reco": "dxfmfr", "fit": "dxsmww"}
    assert snap["counts"]["reco"]["excluded"] == 1 and snap["counts"]["reco"]["missing"] == 1
    [running] = snap["running"]
    assert running["worker"] == "tcp://10.0.0.1:1" and running["started"] == 102.0
    # a later message of the same run keeps its start
    board.run_progress(
        {"phase": "reco", "run": 6, "completed": 5, "total": 10, "worker": "tcp://10.0.0.1:1", "at": 107}
    )
    assert board.snapshot()["running"][0]["started"] == 102.0
    json.dumps(snap)


def test_snapshots_carry_only_the_bars_and_failures_asked_for():
    board = small_board()
    full = board.snapshot()
    assert full["n_bars"] == 4 and len(full["bars"]) == 4  # the skipped fit of run 3 did not run
    assert full["bars"][0] == ["tcp://10.0.0.1:1", "reco", 1, 100.5, 101.5, "done", False]
    assert [f["run"] for f in full["failures"]] == [3, 5] and "Traceback" in full["failures"][0]["traceback"]
    later = board.snapshot(bars_from=3, failures_from=2)
    assert later["bars"] == full["bars"][3:] and later["bars_from"] == 3
    assert later["failures"] == [] and later["n_failures_kept"] == 2


def test_the_plugin_appends_what_is_new_and_asks_again_after_a_gap():
    board = small_board()
    plugin = GyreDashboardPlugin()
    assert plugin.receive(board.snapshot(bars_from=0, failures_from=0))["bars"] == 4
    board.task_done(ran("fit", 6, "tcp://10.0.0.1:1", 103.0, 104.0))
    answer = plugin.receive(board.snapshot(bars_from=4, failures_from=2))
    assert answer == {"serving": False, "bars": 5, "failures": 2}
    assert plugin.boards["k"]["bars"] == board.snapshot()["bars"]
    # a send that starts past what the plugin holds is not appended: the answer says where to start
    other = GyreDashboardPlugin()
    assert other.receive(board.snapshot(bars_from=4, failures_from=2))["bars"] == 0
    assert other.receive(board.snapshot(bars_from=0, failures_from=0))["bars"] == 5


def test_state_json_sends_the_sections_and_only_the_moving_ones_when_nothing_changed():
    board = small_board()
    plugin = GyreDashboardPlugin()
    plugin.receive(board.snapshot())
    first = plugin.state()
    rows = ["gyre-head-0", "gyre-row-0-0", "gyre-head-1", "gyre-row-1-0"]
    assert list(first["html"]) == ["gyre-status", "gyre-grid", *rows, *SECTION_IDS[2:]]
    assert 'id="gyre-row-1-0" data-first-run="1"></div>' in first["html"]["gyre-grid"]  # the frame, rows apart
    assert "bars" not in first["board"] and all("traceback" not in f for f in first["board"]["failures"])
    again = plugin.state("k", since=first["board"]["version"])
    assert set(again["html"]) == set(CLOCK_SECTIONS)
    # one more (phase, run) ends: its row, its phase's head and what it adds to are sent, not the rest
    version = board.version
    board.task_done(ran("fit", 5, "tcp://10.0.0.2:2", 103.0, 103.5, Status.SKIPPED))
    plugin.receive(board.snapshot(bars_from=4, failures_from=2))
    later = plugin.state("k", since=version)
    assert {"gyre-head-1", "gyre-row-1-0", "gyre-timeline", "gyre-counts"} <= set(later["html"])
    assert not {"gyre-grid", "gyre-head-0", "gyre-row-0-0", "gyre-failures", "gyre-phase-key"} & set(later["html"])
    board.finish()
    plugin.receive(board.snapshot(bars_from=5, failures_from=2))
    assert plugin.state("k", since=board.version)["html"] == {}  # ended and unchanged: nothing to draw again
    assert len(plugin.state("k")["html"]) == len(first["html"])  # a new page gets everything


def test_timeline_has_a_row_per_worker_and_a_bar_per_phase_run():
    snap = small_board().snapshot()
    svg = timeline_svg(snap["bars"], snap["running"], phases=snap["phases"], start=100.0, end=104.0)
    assert re.findall(r'class="gyre-worker-row" data-worker="([^"]+)"', svg) == ["tcp://10.0.0.1:1", "tcp://10.0.0.2:2"]
    assert svg.count('data-status="done"') == 2 and svg.count('data-status="failed"') == 2
    assert svg.count('data-status="running"') == 1
    assert 'data-status="failed" x=' in svg and 'stroke="#d7263d"' in svg
    # bars are placed in time: reco of run 1 starts at 0.5 s of 4 s, over the 920 px after the labels
    x = float(re.search(r'data-phase="reco" data-run="1" data-status="done" x="([\d.]+)"', svg).group(1))
    assert abs(x - (170 + 0.5 / 4 * 920)) < 0.2
    capped = timeline_svg(snap["bars"], [], phases=snap["phases"], start=100.0, end=104.0, max_bars=3)
    assert 'data-bars="3"' in capped and "the 1 earliest (phase, run)s are not drawn" in capped
    assert "nothing has run" in timeline_svg([], [], phases=["a"], start=0.0, end=1.0)


def test_a_large_timeline_draws_one_path_per_worker_phase_and_status(tmp_path):
    report = synthetic_report(tmp_path, runs=1000, workers=8, failed=(7, 8))
    snap = final_board(report).snapshot()
    paths = timeline_svg(snap["bars"], [], phases=snap["phases"], start=snap["started"], end=snap["finished"])
    rects = timeline_svg(
        snap["bars"], [], phases=snap["phases"], start=snap["started"], end=snap["finished"], detail=10_000
    )
    assert 'data-detailed="false"' in paths and '<rect class="gyre-bar-' not in paths
    counts = [int(n) for n in re.findall(r'<path [^>]*data-bars="(\d+)"', paths)]
    assert sum(counts) == len(snap["bars"]) == 1998  # 1000 reco (two failed) and 998 fit (two skipped)
    assert len(counts) == len({(b[0], b[1], b[5]) for b in snap["bars"]})
    assert rects.count('<rect class="gyre-bar-') == 1998 and len(rects) > 5 * len(paths)


def test_histograms_count_the_phase_runs_that_ran():
    snap = small_board().snapshot()
    svg = histograms_svg(snap["bars"], phases=snap["phases"], bins=4)
    reco = svg.split('data-phase="reco"')[1].split("</svg>")[0]
    assert 'data-n="3"' in svg.split("<svg")[1]
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', reco)) == 3
    assert seconds_text(0.5) == "0.50 s" and seconds_text(150) == "2.5 min" and seconds_text(7200) == "2.0 h"


def test_pace_gives_throughput_and_an_eta_from_the_outcomes_so_far():
    snap = small_board().snapshot()
    p = pace(snap, now=104.0)
    assert p["ran"] == 4 and p["per_second"] == 1.0  # four (phase, run)s ran in the 4 s since the start
    assert p["to_finish"] == 8 and p["ended"] == 5 and p["remaining"] == 3
    assert p["eta"] == 3.0
    assert p["runs_ended"] == 2  # runs 1 and 3 (its fit skipped); 2 and 4 are not the job's
    sections = render_sections(snap, 104.0)
    assert "ETA ≈ 3.00 s" in sections["gyre-status"] and "1 (phase, run)s/s" in sections["gyre-status"]


def test_grid_rows_are_labelled_with_their_first_run(tmp_path):
    assert [grid_width(n) for n in (1, 12, 30, 31, 300, 301, 1000)] == [1, 12, 30, 25, 25, 50, 50]
    report = synthetic_report(tmp_path, runs=100, workers=3, failed=(10, 20))
    sections = render_sections(final_board(report).snapshot(), report.finished.timestamp())
    grid = sections["gyre-grid"]
    assert re.findall(r'data-first-run="(\d+)"', grid.split('data-phase="fit"')[0]) == ["1", "26", "51", "76"]
    # the worker and the duration of a finished (phase, run) are on its cell
    assert re.search(r'data-run="7" data-state="done" title="run 7 · reco · done · [\d.]+ s on 10\.0\.0\.\d:\d+', grid)


def test_failures_are_grouped_with_their_tracebacks(tmp_path):
    report = synthetic_report(tmp_path, runs=60, workers=4, skipped=(5,), missing=(6,), failed=(10, 11, 12, 30))
    html = render_html_report(report)
    groups = re.findall(r'<details class="gyre-failure-group"[^>]*data-runs="([^"]+)"', html)
    assert groups == ["10,11,12,30"]
    assert "4 runs (10-12,30)" in html
    assert html.count('<div class="gyre-traceback"') == 4
    assert "ValueError: bad calibration for run 30" in html
    assert 'data-run="5" data-state="excluded"' in html and 'data-run="6" data-state="missing"' in html
    assert "Running now" not in html and "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched: it opens on a node without internet


def test_the_announcement_says_where_per_phase_progress_is():
    class Model:
        name, hosts, scheduler_host = "local", (), None

        def dashboard_tunnel_hint(self) -> None:
            return None

    class Engine:
        dashboard_link = "http://127.0.0.1:8787/status"

    lines = dashboard_lines(Model(), Engine(), gyre_page=True)  # type: ignore[arg-type]
    assert lines[1] == "gyre page at http://127.0.0.1:8787/gyre"
    assert "per-phase progress" in lines[-1] and "Progress panel" in lines[-1]


def test_the_publisher_sends_each_bar_once_and_the_page_has_them_all(client):
    board = RunBoard(pipeline="pub", key="pub-test", phases=["reco"], runs=range(1, 41))
    sent: list[int] = []
    snapshot = board.snapshot

    def recording(**options: int) -> dict:
        taken = snapshot(**options)
        sent.append(len(taken["bars"]))
        return taken

    board.snapshot = recording  # type: ignore[method-assign]
    publisher = BoardPublisher(client, board, interval=0.02)
    assert publisher.start()
    for run in range(1, 41):
        board.task_done(ran("reco", run, f"tcp://10.0.0.{run % 3}:1", 100.0 + run, 100.5 + run))
        time.sleep(0.005)
    board.finish()
    publisher.close()
    assert sum(sent) == 40 and len(sent) > 1  # every bar went once, over several sends
    base = str(client.dashboard_link).rsplit("/status", 1)[0]
    with urllib.request.urlopen(f"{base}/gyre/state.json?pipeline=pub-test", timeout=30) as answer:
        state = json.loads(answer.read())
    assert state["board"]["id"] == "pub-test" and state["board"]["n_bars"] == 40
    assert 'data-bars="40"' in state["html"]["gyre-timeline"] and 'data-workers="3"' in state["html"]["gyre-timeline"]
