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
from toyphases import StatPhase, SumPhase
from watchphases import GatedScale

from gyre import Pipeline, PipelineReport, start_pipeline

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

    def __init__(self, tmp_path: Path, run_dir: Path, client: Any, name: str) -> None:
        self.gate = tmp_path / f"gate-{name}"
        phases = [GatedScale(self.gate, fail_on=(3,)), SumPhase(), StatPhase()]
        self.pipeline = Pipeline(phases, [True, True, True], tmp_path / name, run_dir, seed=3)
        self.report: PipelineReport | None = None
        self.thread = threading.Thread(target=self._run, args=(client,), daemon=True)
        self.thread.start()

    def _run(self, client: Any) -> None:
        self.report = start_pipeline(self.pipeline, 1, 6, client=client, disable_display=True)

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


def test_gyre_page_draws_the_live_grid_and_the_final_states(browser, client, tmp_path, run_dir):
    job = Background(tmp_path, run_dir, client, "live")
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
        assert cells(page) == 6 * 3  # runs 1-6 (4 has no file) × three phases
        for phase in ("scale", "sum", "stat"):
            assert page.locator(f'.gyre-phase[data-phase="{phase}"] .gyre-cell').count() == 6
        assert cells(page, '[data-state="missing"]') == 3
        assert "scale · run" in page.locator("#gyre-running").inner_text()
        screenshot(page, "gyre-page-running.png")

        report = job.release()
        assert report.failed_runs == [3]
        page.wait_for_function("() => document.body.dataset.finished === 'true'", timeout=30_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.gyre-cell[data-run][data-state=done]').length === 12", timeout=10_000
        )
        assert cells(page, '[data-state="running"]') == 0
        assert cells(page, '[data-state="waiting"]') == 0
        failed = page.locator('.gyre-phase[data-phase="scale"] .gyre-cell[data-state="failed"]')
        assert failed.count() == 1 and failed.get_attribute("data-run") == "3"
        assert "bad calibration for run 3" in (failed.get_attribute("title") or "")
        assert cells(page, '[data-state="skipped"]') == 2
        assert cells(page, '[data-state="missing"]') == 3
        failures = page.locator("#gyre-failures .gyre-failure")
        assert failures.count() == 1
        assert "run 3 · scale" in failures.inner_text() and "bad calibration for run 3" in failures.inner_text()
        assert page.locator('#gyre-counts tr[data-phase="scale"] td[data-state="failed"]').inner_text() == "1"
        screenshot(page, "gyre-page-finished.png")
    finally:
        job.gate.touch()
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
