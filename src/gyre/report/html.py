"""The final report as a static HTML page in the workspace: the live gyre page's sections, drawn once.

It needs no scheduler, no network and no JavaScript: open ``<workspace>/report.html`` in any
browser, or copy it off the cluster. The grid with its run numbers, the timeline of the
workers, the duration histograms, the grouped failures with their tracebacks and the tables
are drawn by the same code as on the live page (:mod:`gyre.watch.sections`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from ..watch.board import RunBoard
from ..watch.browser_page import sections_body, state_css
from ..watch.sections import render_sections
from ..workspace.atomic import atomic_path
from ..workspace.layout import html_report_path

if TYPE_CHECKING:
    from .model import PipelineReport

__all__ = ["final_board", "render_html_report", "write_html_report"]


def render_html_report(report: PipelineReport) -> str:
    """The report as one self-contained HTML document."""
    board = final_board(report).snapshot(max_running=0)
    sections = render_sections(board, report.finished.timestamp(), failures=report.failures())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gyre report · {escape(report.pipeline)}</title>",
        f"<style>{state_css()}</style></head>",
        '<body data-finished="true" data-rendered="true">',
        f"<h1>gyre report · {escape(report.pipeline)}</h1>",
        f'<div class="gyre-muted" id="gyre-summary">{escape(report.summary())}</div>',
        f'<div class="gyre-muted" id="gyre-status">{sections["gyre-status"]}</div>',
        f'<div class="gyre-muted">execution: {escape(report.execution)} · seed {report.seed} · '
        f"{_when(report.started)} → {_when(report.finished)}</div>",
        sections_body(sections, live=False),
    ]
    if report.notes:
        parts += ["<h2>Notes</h2>", *[f"<div>{escape(note)}</div>" for note in report.notes]]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def final_board(report: PipelineReport) -> RunBoard:
    """The final board of a finished pipeline, rebuilt from its report (adaptive children included)."""
    board = RunBoard(
        pipeline=report.pipeline,
        key=report.started.isoformat(),
        phases=report.phases,
        runs=report.runs,
        missing=report.missing_runs,
        skipped=report.skipped_runs,
        max_failures=max(200, len(report.outcomes) + len(report.child_outcomes)),
    )
    board.started = report.started.timestamp()
    for outcome in sorted(report.outcomes, key=lambda o: (o.run, report._phase_index(o.phase))):
        board.task_done(outcome)
    for outcome in report.child_outcomes:
        board.task_done(outcome)
    board.finish()
    board.finished = report.finished.timestamp()
    return board


def write_html_report(report: PipelineReport, path: Path | None = None) -> Path:
    """Write the static summary (atomically), by default to ``<workspace>/report.html``."""
    target = Path(path) if path is not None else html_report_path(report.workspace)
    with atomic_path(target) as temporary:
        temporary.write_text(render_html_report(report), encoding="utf-8")
    return target


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
