"""gyre in Jupyter, for real: a notebook executed by nbclient on an ipykernel kernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gyre.report.notebook import report_html

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "pipeline.ipynb"


def outputs_of(notebook: object, mime: str) -> list[str]:
    """Every output of that MIME type, in cell order (display data, results and streams as text/plain)."""
    found = []
    for cell in notebook.cells:  # type: ignore[attr-defined]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and mime == "stream":
                found.append(output["text"])
            elif mime in output.get("data", {}):
                found.append(output["data"][mime])
    return found


@pytest.mark.slow
def test_a_notebook_shows_live_progress_in_its_cell_and_the_report_as_html(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")
    pytest.importorskip("ipykernel", reason="the test extra installs ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    updates: list[str] = []

    class Recording(nbclient.NotebookClient):  # type: ignore[misc,name-defined]
        def process_message(self, msg, cell, cell_index):  # type: ignore[no-untyped-def]
            if msg["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"].get("text/html", ""))
            return super().process_message(msg, cell, cell_index)

    client = Recording(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    # while the job ran, the display in the cell was updated in place, in-run progress included
    assert len(updates) >= 3
    assert any(re.search(r"running: calibrate run \d [1-9]\d?%", html) for html in updates), updates

    html = outputs_of(notebook, "text/html")
    progress = [h for h in html if 'class="gyre-progress"' in h]
    reports = [h for h in html if 'class="gyre-report"' in h]
    # the progress: one display in the cell, updated in place to the job's end (no 30-second text lines)
    assert len(progress) == 1
    assert re.search(r'data-phase="calibrate".*6/6 · 1 failed', progress[0])
    assert re.search(r'data-phase="histogram".*5/6 · 1 skipped', progress[0])
    assert "calibrate: run 4: phase &#x27;calibrate&#x27; raised on run 4" in progress[0]
    streams = "".join(outputs_of(notebook, "stream"))
    assert "gyre: notebook, runs 1-6 (6 runs × 2 phases) on local" in streams
    assert "gyre [" not in streams
    # the report: counts, the failure grouped with its traceback, the run × phase grid
    assert len(reports) == 1
    report = reports[0]
    assert "notebook: 5/6 runs complete, 1 failed (run 4)" in report
    assert len(re.findall(r'class="gyre-cell"', report)) == 12
    assert re.findall(r'data-run="(\d+)" data-phase="calibrate" data-state="failed"', report) == ["4"]
    assert 'data-run="4" data-phase="histogram" data-state="skipped"' in report
    assert 'class="gyre-failure-group" data-phase="calibrate" data-runs="4"' in report
    assert "ValueError: no calibration for run 4" in report  # the traceback, one click away
    plain = outputs_of(notebook, "text/plain")
    assert any(
        p.startswith("<PipelineReport 'notebook': 6 runs × 2 phases, 10 done, 1 failed, 1 skipped (run 4)")
        for p in plain
    )
    assert any("report.json at " in s for s in streams.splitlines() if s.startswith("<PipelineReport"))


def test_the_report_html_escapes_what_it_shows(tmp_path, run_dir):
    from toyphases import ScalePhase, SumPhase

    from gyre import Pipeline, SyncModel, start_pipeline

    class Odd(ScalePhase):
        def run(self, payload, ctx):  # type: ignore[no-untyped-def]
            if ctx.run == 2:
                raise ValueError("no <b>gain</b> & no offset")
            return super().run(payload, ctx)

    pipeline = Pipeline([Odd(), SumPhase()], [True, True], tmp_path / "ws", run_dir, seed=1)
    report = start_pipeline(pipeline, 1, 3, cluster=SyncModel(raise_errors=False), disable_display=True)
    html = report_html(report)
    assert "<b>gain" not in html and "no &lt;b&gt;gain&lt;/b&gt; &amp; no offset" in html
    assert repr(report) == (
        f"<PipelineReport 'pipeline': 3 runs × 2 phases, 4 done, 1 failed, 1 skipped (run 2), "
        f"report.json at {tmp_path / 'ws' / 'report.json'}>"
    )


def test_a_large_report_draws_a_bounded_grid_in_the_notebook(tmp_path):
    from datetime import datetime, timezone

    from gyre import PipelineReport
    from gyre.result import Status, TaskOutcome

    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    report = PipelineReport(
        pipeline="big",
        workspace=tmp_path,
        seed=1,
        execution="test",
        phases=("reco",),
        runs=tuple(range(1, 1201)),
        missing_runs=(),
        skipped_runs=(),
        outcomes=tuple(TaskOutcome("reco", run, Status.DONE, started=0.0, finished=1.0) for run in range(1, 1201)),
        started=moment,
        finished=moment,
    )
    html = report._repr_html_()
    assert html.count('class="gyre-cell"') == 1000
    assert "the first 1000 of 1200 runs: all are in report.html" in html
    assert "runs 951–1000" in html  # each line of the grid says which runs it holds
    assert (
        repr(report)
        == f"<PipelineReport 'big': 1200 runs × 1 phase, 1200 done, report.json at {tmp_path / 'report.json'}>"
    )
