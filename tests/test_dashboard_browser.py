"""The gyre page and dask's /status page, loaded in a real headless Chromium while a pipeline runs.

Chromium is Debian's (``/usr/bin/chromium``, installed with apt-get when missing and we are
root), driven by Playwright; Playwright's own browser downloads are never used. Without a
browser these tests fail under CI (``CI=true``) and are skipped, with the reason, elsewhere.
Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import watchphases
from pagedata import synthetic_report
from toyphases import StatPhase, SumPhase
from watchphases import GatedScale

from gyre import Pipeline, PipelineReport, start_pipeline
from gyre.report.html import write_html_report

cloudpickle.register_pickle_by_value(watchphases)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


def _install_chromium() -> None:
    if CHROMIUM.exists() or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        subprocess.run(command, env=environment, check=False, capture_output=True, timeout=900)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Debian Chromium with an empty profile, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    _install_chromium()
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing and could not be installed (apt-get install chromium, as root)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


class Background:
    """start_pipeline in a thread, its first phase held at a gate until ``release``."""

    def __init__(
        self,
        tmp_path: Path,
        run_dir: Path,
        client: Any,
        name: str,
        *,
        fail_on: tuple[int, ...] = (3,),
        skip: tuple[int, ...] = (),
    ) -> None:
        self.gate = tmp_path / f"gate-{name}"
        phases = [GatedScale(self.gate, fail_on=fail_on), SumPhase(), StatPhase()]
        self.pipeline = Pipeline(phases, [True, True, True], tmp_path / name, run_dir, seed=3)
        self.skip = skip
        self.report: PipelineReport | None = None
        self.thread = threading.Thread(target=self._run, args=(client,), daemon=True)
        self.thread.start()

    def _run(self, client: Any) -> None:
        self.report = start_pipeline(self.pipeline, 1, 6, client=client, disable_display=True, runs_to_skip=self.skip)

    def release(self) -> PipelineReport:
        self.gate.touch()
        self.thread.join(timeout=120)
        assert self.report is not None, "the pipeline did not end"
        return self.report


def dashboard_base(client: Any) -> str:
    return str(client.dashboard_link).rsplit("/status", 1)[0]


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def cells(page: Any, selector: str = "") -> int:
    return int(page.locator(f".gyre-cell[data-run]{selector}").count())


def check_final_pictures(page: Any, report: PipelineReport) -> None:
    """What both pages show of the finished job: run labels, --skip'd runs, the timeline, grouped failures."""
    # the grid: runs 1-6 in one row per phase, labelled with its first run; run 2 excluded, run 4 missing
    labels = page.locator(".gyre-phase .gyre-row-label").all_inner_texts()
    assert labels == ["1", "1", "1"]
    for phase in ("scale", "sum", "stat"):
        runs = page.locator(f'.gyre-phase[data-phase="{phase}"] .gyre-cell').evaluate_all(
            "nodes => nodes.map(n => n.dataset.run + ':' + n.dataset.state)"
        )
        assert [r.split(":")[0] for r in runs] == ["1", "2", "3", "4", "5", "6"]  # positions are run numbers
        assert runs[1] == "2:excluded" and runs[3] == "4:missing"
    assert "excluded (--skip)" in page.locator(".gyre-legend").first.inner_text()
    # the timeline: one bar per (phase, run) that ran, in the row of the worker that ran it
    ran = [o for o in report.outcomes if o.started is not None and o.finished is not None]
    assert len(ran) == 8  # scale 1, 3, 5, 6; sum and stat 1 and 6
    bars = page.locator(".gyre-timeline rect[data-status]")
    assert bars.count() == len(ran)
    drawn = bars.evaluate_all("nodes => nodes.map(n => [n.dataset.worker, n.dataset.phase, +n.dataset.run])")
    assert sorted(map(tuple, drawn)) == sorted((o.worker, o.phase, o.run) for o in ran)
    rows = page.locator(".gyre-timeline .gyre-worker-row").evaluate_all("nodes => nodes.map(n => n.dataset.worker)")
    assert sorted(rows) == sorted({o.worker for o in ran})
    failed = page.locator('.gyre-timeline rect[data-status="failed"]')
    assert sorted(failed.evaluate_all("nodes => nodes.map(n => +n.dataset.run)")) == [3, 5]
    histogram = page.locator('.gyre-histogram[data-phase="scale"]')
    assert histogram.get_attribute("data-n") == "4"
    # worker of each finished (phase, run) on hover, and in the workers table
    done = page.locator('.gyre-phase[data-phase="stat"] .gyre-cell[data-run="6"]')
    worker = report.outcome("stat", 6).worker
    assert worker and worker.split("://")[-1] in (done.get_attribute("title") or "")
    assert page.locator("#gyre-workers tr[data-worker]").count() == len({o.worker for o in ran})
    # failures: one group for runs 3 and 5, the tracebacks one click away
    groups = page.locator("#gyre-failures .gyre-failure-group")
    assert groups.count() == 1
    assert groups.get_attribute("data-runs") == "3,5"
    summary = groups.locator("summary").inner_text()
    assert "scale" in summary and "2 runs" in summary and "bad calibration for run 3" in summary
    traceback = groups.locator('.gyre-traceback[data-run="5"] pre')
    assert not traceback.is_visible()
    groups.locator("summary").click()
    traceback.wait_for(state="visible", timeout=5_000)
    assert "ValueError: bad calibration for run 5" in traceback.inner_text()
    assert "Traceback" in traceback.inner_text()
    assert "(phase, run)s/s" in page.locator("#gyre-status").inner_text()


def test_gyre_page_draws_the_live_grid_the_timeline_and_the_final_states(browser, client, tmp_path, run_dir):
    job = Background(tmp_path, run_dir, client, "live", fail_on=(3, 5), skip=(2,))
    page = browser.new_page()
    try:
        page.goto(dashboard_base(client) + "/gyre")
        # the grid of this pipeline, while its first phase is held at the gate
        page.wait_for_function(
            "() => document.body.dataset.rendered === 'true' && (document.body.dataset.pipeline || '')"
            f".startsWith('{job.pipeline.name}-')",
            timeout=30_000,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('.gyre-cell[data-run][data-state=running]').length >= 2", timeout=30_000
        )
        assert page.locator("body").get_attribute("data-finished") == "false"
        assert page.locator(".gyre-phase").evaluate_all("nodes => nodes.map(n => n.dataset.phase)") == [
            "scale",
            "sum",
            "stat",
        ]
        assert cells(page) == 6 * 3  # runs 1-6 (2 skipped on request, 4 has no file) × three phases
        for phase in ("scale", "sum", "stat"):
            assert page.locator(f'.gyre-phase[data-phase="{phase}"] .gyre-cell').count() == 6
        assert cells(page, '[data-state="missing"]') == 3
        assert cells(page, '[data-state="excluded"]') == 3
        assert "scale · run" in page.locator("#gyre-running").inner_text()
        # the running (phase, run)s are bars already, each in its worker's row, and their worker is named
        page.wait_for_function(
            "() => document.querySelectorAll('.gyre-timeline rect[data-status=running]').length >= 2", timeout=30_000
        )
        running = page.locator(".gyre-timeline rect[data-status=running]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.worker)"
        )
        assert all(worker.startswith("tcp://") for worker in running)
        assert "on 127.0.0.1:" in page.locator("#gyre-running").inner_text()
        assert "ETA" in page.locator("#gyre-status").inner_text()
        screenshot(page, "gyre-page-running.png")

        report = job.release()
        assert report.failed_runs == [3, 5]
        page.wait_for_function("() => document.body.dataset.finished === 'true'", timeout=30_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.gyre-cell[data-run][data-state=done]').length === 6", timeout=10_000
        )
        assert cells(page, '[data-state="running"]') == 0
        assert cells(page, '[data-state="waiting"]') == 0
        assert cells(page, '[data-state="skipped"]') == 4
        assert page.locator('#gyre-counts tr[data-phase="scale"] td[data-state="failed"]').inner_text() == "2"
        check_final_pictures(page, report)
        screenshot(page, "gyre-page-finished.png")
        page.wait_for_timeout(2_500)  # later polls draw nothing new: the opened group stays open
        assert page.locator('.gyre-failure-group .gyre-traceback[data-run="5"] pre').is_visible()

        # report.html: the same sections, drawn once, read from the disk without a scheduler
        page.goto((job.pipeline.workspace_path / "report.html").as_uri())
        check_final_pictures(page, report)
        screenshot(page, "report-html.png")
    finally:
        job.gate.touch()
        page.close()


def test_report_html_numbers_the_rows_of_a_thousand_runs(browser, tmp_path):
    report = synthetic_report(
        tmp_path, runs=1000, workers=16, skipped=(17, 18), missing=(500,), failed=(40, 41, 42, 700)
    )
    path = write_html_report(report)
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        labels = page.locator('.gyre-phase[data-phase="reco"] .gyre-row-label').all_inner_texts()
        assert labels == [str(first) for first in range(1, 1001, 50)]
        # run 537 is the 37th cell of the row that starts with 501
        row = page.locator('.gyre-phase[data-phase="reco"] .gyre-row[data-first-run="501"] .gyre-cell')
        assert row.count() == 50 and row.nth(36).get_attribute("data-run") == "537"
        assert cells(page, '[data-state="excluded"]') == 2 * 2
        assert page.locator(".gyre-timeline .gyre-worker-row").count() == 16
        ran = [o for o in report.outcomes if o.started is not None]
        # past 800 bars, one path per worker, phase and status, with its count of bars
        assert page.locator(".gyre-timeline rect[data-status]").count() == 0
        drawn = page.locator(".gyre-timeline path[data-bars]").evaluate_all("ns => ns.map(n => +n.dataset.bars)")
        assert sum(drawn) == len(ran)
        failed = page.locator('.gyre-timeline path[data-status="failed"]').evaluate_all(
            "ns => ns.reduce((total, n) => total + +n.dataset.bars, 0)"
        )
        assert failed == 4
        groups = page.locator("#gyre-failures .gyre-failure-group")
        assert groups.count() == 1 and groups.get_attribute("data-runs") == "40,41,42,700"
        assert "4 runs (40-42,700)" in groups.locator("summary").inner_text()
        screenshot(page, "report-html-1000-runs.png")
    finally:
        page.close()


STATUS_NAMES = """
() => {
  const names = new Set();
  for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
    for (const model of doc.all_models) {
      const data = model.data;
      if (data && data.name) for (const name of data.name) names.add(String(name));
    }
  }
  return Array.from(names);
}
"""


def test_dask_status_page_shows_the_phases_in_its_progress_panel(browser, client, tmp_path, run_dir):
    job = Background(tmp_path, run_dir, client, "status")
    page = browser.new_page()
    try:
        page.goto(dashboard_base(client) + "/status")
        # a phase's tasks reach the scheduler once their run's previous phase has finished (so a
        # lost worker never forces a finished phase to run again): the panel shows each phase
        # while it has tasks, so the names are gathered as the job goes on
        seen = (
            f"() => {{ window.gyreSeen = window.gyreSeen || new Set(); "
            f"for (const n of ({STATUS_NAMES})()) window.gyreSeen.add(n); "
            "return Array.from(window.gyreSeen); }"
        )
        page.wait_for_function(f"() => ({seen})().includes('scale')", timeout=45_000)
        page.wait_for_timeout(1000)  # let the panels draw before the picture
        screenshot(page, "dask-status.png")
        job.gate.touch()  # the held first phase ends: the later phases' tasks follow
        page.wait_for_function(
            f"() => ['scale', 'sum', 'stat'].every(n => ({seen})().includes(n))", timeout=45_000, polling=20
        )
        names = page.evaluate(seen)
        assert {"scale", "sum", "stat"} <= set(names)
        assert not [name for name in names if name.startswith(("scale-", "sum-", "stat-"))]  # grouped, not per task
    finally:
        job.release()
        page.close()
