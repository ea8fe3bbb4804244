"""The final report as a static HTML page in the workspace: the run × phase grid, failures, timings.

It needs no scheduler and no JavaScript: open ``<workspace>/report.html`` in any browser, or
copy it off the cluster. The colours and the grid are those of the live gyre page.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..watch.board import BOARD_STATES, RunBoard
from ..watch.browser_page import legend_html, state_css
from ..workspace.atomic import atomic_path
from ..workspace.layout import html_report_path

if TYPE_CHECKING:
    from .model import PipelineReport

__all__ = ["render_html_report", "write_html_report"]

_STATE_OF_CODE = {code: state for state, code in BOARD_STATES.items()}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px 24px;color:#1f2937}
h1{font-size:20px;margin:0 0 4px 0} h2{font-size:15px;margin:18px 0 6px 0}
.gyre-muted{color:#6b7280;font-size:13px}
.gyre-phase-head{font-size:13px;font-weight:600}
table{border-collapse:collapse;font-size:13px} td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #e5e7eb}
td:first-child,th:first-child{text-align:left}
.gyre-failure{font-family:ui-monospace,monospace;font-size:12px;margin:6px 0}
.gyre-failure pre{margin:2px 0 0 16px;color:#4b5563;white-space:pre-wrap}
"""


def render_html_report(report: PipelineReport) -> str:
    """The report as one self-contained HTML document."""
    board = final_board(report).snapshot()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gyre report · {escape(report.pipeline)}</title>",
        f"<style>{_STYLE}\n{state_css()}</style></head><body>",
        f"<h1>gyre report · {escape(report.pipeline)}</h1>",
        f'<div class="gyre-muted" id="gyre-summary">{escape(report.summary())}</div>',
        f'<div class="gyre-muted">execution: {escape(report.execution)} · seed {report.seed} · '
        f"{_when(report.started)} → {_when(report.finished)}</div>",
        f'<div class="gyre-legend gyre-muted">{legend_html()}</div>',
        "<h2>Runs × phases</h2>",
        '<div id="gyre-grid">',
        *_grid(board),
        "</div>",
        "<h2>Counts and timings per phase</h2>",
        *_counts(board),
        "<h2>Failures</h2>",
        *_failures(report),
    ]
    if board["children"]:
        parts.append("<h2>Adaptive children</h2>")
        for child in board["children"]:
            counts = ", ".join(f"{n} {state}" for state, n in child["counts"].items())
            lineage = " / ".join(child["lineage"])
            parts.append(
                f'<div class="gyre-child">generation {child["generation"]} · {escape(lineage)} · {counts}</div>'
            )
    if report.notes:
        parts += ["<h2>Notes</h2>", *[f"<div>{escape(note)}</div>" for note in report.notes]]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def final_board(report: PipelineReport) -> RunBoard:
    """The final board of a finished pipeline, rebuilt from its report."""
    board = RunBoard(
        pipeline=report.pipeline,
        key=report.started.isoformat(),
        phases=report.phases,
        runs=report.runs,
        missing=report.missing_runs,
        max_failures=max(200, len(report.outcomes)),
    )
    board.started = report.started.timestamp()
    for outcome in sorted(report.outcomes, key=lambda o: (o.run, report._phase_index(o.phase))):
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


def _grid(board: dict[str, Any]) -> list[str]:
    errors = {(f["phase"], f["run"]): f["error"] for f in board["failures"]}
    lines = []
    for phase in board["phases"]:
        cells = []
        for run, code in zip(board["runs"], board["grid"][phase]):
            state = _STATE_OF_CODE[code]
            title = f"run {run} · {phase} · {state}"
            if (phase, run) in errors:
                title += "\n" + errors[(phase, run)]
            cells.append(
                f'<span class="gyre-cell" data-run="{run}" data-state="{state}" title="{escape(title)}"></span>'
            )
        lines.append(
            f'<div class="gyre-phase" data-phase="{escape(phase)}"><div class="gyre-phase-head">{escape(phase)}</div>'
            f'<div class="gyre-cells">{"".join(cells)}</div></div>'
        )
    return lines


def _counts(board: dict[str, Any]) -> list[str]:
    states = [s for s in BOARD_STATES if s not in ("waiting", "running")]
    head = "".join(f"<th>{s}</th>" for s in states)
    rows = [
        f'<table id="gyre-counts"><tr><th>phase</th>{head}<th>total</th><th>mean</th><th>median</th><th>max</th></tr>'
    ]
    for phase in board["phases"]:
        counts = board["counts"][phase]
        timing = board["timings"][phase]
        cells = "".join(f"<td>{counts[s]}</td>" for s in states)
        times = "".join(f"<td>{_seconds(timing[k])}</td>" for k in ("total", "mean", "median", "max"))
        rows.append(f'<tr data-phase="{escape(phase)}"><td>{escape(phase)}</td>{cells}{times}</tr>')
    rows.append("</table>")
    return rows


def _failures(report: PipelineReport) -> list[str]:
    failures = report.failures()
    if not failures:
        return ['<div class="gyre-muted" id="gyre-failures">none</div>']
    lines = ['<div id="gyre-failures">']
    for failure in failures:
        lines.append(
            f'<div class="gyre-failure" data-run="{failure.run}" data-phase="{escape(failure.phase)}">'
            f"run {failure.run} · {escape(failure.phase)}: {escape(failure.error or '')}"
        )
        if failure.traceback:
            lines.append(f"<details><summary>traceback</summary><pre>{escape(failure.traceback)}</pre></details>")
        lines.append("</div>")
    lines.append("</div>")
    return lines


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f} s" if value < 100 else f"{value / 60:.1f} min"


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
