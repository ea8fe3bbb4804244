"""A report as a notebook shows it: one summary line for ``repr``, an HTML block for ``_repr_html_``.

The HTML is a fragment for a notebook cell (no page around it, no script): the summary,
the counts per phase, the failures grouped (alike failures of a phase on one line, each
with the first run's traceback one click away) and a compact run × phase grid in the
colours of the gyre page, each square titled with its run, phase and status.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from ..result import STATUSES, group_failures
from ..runs import plural, runs_phrase
from ..watch.board import STATE_COLOURS
from ..watch.failures import failure_line
from ..workspace.layout import report_path

#: a :class:`gyre.report.model.PipelineReport` (which imports this module for its repr and HTML)
PipelineReport = Any

__all__ = ["report_html", "report_repr"]

#: runs per line of the grid: a wide job wraps, each line labelled with its runs
GRID_WIDTH = 50
#: runs drawn at most: a notebook output stays small; the whole grid is in report.html
GRID_MAX_RUNS = 1000


def report_repr(report: PipelineReport) -> str:
    """One line: the pipeline, its size, the (phase, run)s per status, the failed runs, where report.json is."""
    counts: Counter[str] = Counter(o.status.value for o in report.outcomes)
    counts["missing"] += len(report.missing_runs) * len(report.phases)
    statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    size = f"{plural(len(report.runs), 'run')} × {plural(len(report.phases), 'phase')}"
    text = f"<PipelineReport {report.pipeline!r}: {size}"
    text += f", {statuses}" if statuses else ""
    failed = report.failed_runs
    if failed:
        text += f" ({runs_phrase(failed)})"
    if report.interrupted:
        text += ", interrupted"
    return text + f", report.json at {report_path(report.workspace)}>"


def report_html(report: PipelineReport) -> str:
    """The report as an HTML fragment for a notebook cell."""
    colour = STATE_COLOURS["done"] if report.ok else STATE_COLOURS["failed"]
    parts = [
        '<div class="gyre-report" style="font-family:system-ui,sans-serif;font-size:13px">',
        f'<div style="border-left:4px solid {colour};padding-left:8px"><b>gyre report · {escape(report.pipeline)}</b>'
        f'<div class="gyre-summary">{escape(report.summary())}</div>'
        f'<div style="color:#6b7280">{escape(report.execution)} · seed {report.seed} · '
        f"{escape(str(report_path(report.workspace)))}</div></div>",
        *_counts(report),
        *_failures(report),
        *_grid(report),
        "</div>",
    ]
    return "".join(parts)


def _counts(report: PipelineReport) -> list[str]:
    head = "".join(f'<th style="padding:0 8px">{s}</th>' for s in STATUSES)
    rows = [f'<table class="gyre-counts" style="margin-top:6px"><tr><th>phase</th>{head}</tr>']
    for phase, counts in report.counts().items():
        cells = "".join(f'<td style="text-align:right;padding:0 8px">{counts[s]}</td>' for s in STATUSES)
        rows.append(f'<tr data-phase="{escape(phase)}"><td>{escape(phase)}</td>{cells}</tr>')
    rows.append("</table>")
    return rows


def _failures(report: PipelineReport) -> list[str]:
    groups = group_failures(report.outcomes)
    if not groups:
        return []
    parts = ['<div class="gyre-failures"><b>failures</b>']
    for group in groups[:20]:
        line = f"{escape(group.phase)}, {escape(failure_line(group))}"
        runs = " ".join(str(r) for r in group.runs)
        traceback = group.tracebacks.get(group.runs[0])
        if traceback:
            parts.append(
                f'<details class="gyre-failure-group" data-phase="{escape(group.phase)}" data-runs="{runs}">'
                f'<summary style="color:{STATE_COLOURS["failed"]};font-family:monospace">{line}</summary>'
                f'<pre style="font-size:11px">{escape(traceback)}</pre></details>'
            )
        else:
            parts.append(
                f'<div class="gyre-failure-group" data-phase="{escape(group.phase)}" data-runs="{runs}" '
                f'style="color:{STATE_COLOURS["failed"]};font-family:monospace">{line}</div>'
            )
    if len(groups) > 20:
        parts.append(f"<div>… and {len(groups) - 20} more kinds of failure (see report.html)</div>")
    parts.append("</div>")
    return parts


def _grid(report: PipelineReport) -> list[str]:
    everything = sorted(set(report.runs) | set(report.missing_runs))
    runs = everything[:GRID_MAX_RUNS]
    if not runs:
        return []
    cell = "display:inline-block;width:9px;height:9px;margin:0 1px 0 0;border-radius:2px"
    parts = ['<table class="gyre-grid" style="margin-top:6px;border-collapse:collapse">']
    for start in range(0, len(runs), GRID_WIDTH):
        line = runs[start : start + GRID_WIDTH]
        label = f"runs {line[0]}–{line[-1]}" if len(line) > 1 else f"run {line[0]}"
        parts.append(f'<tr><td colspan="2" style="color:#6b7280;font-size:11px;text-align:left">{label}</td></tr>')
        for phase in report.phases:
            squares = []
            for run in line:
                state = str(report.status(phase, run))
                squares.append(
                    f'<span class="gyre-cell" data-run="{run}" data-phase="{escape(phase)}" data-state="{state}" '
                    f'title="run {run} · {escape(phase)} · {state}" '
                    f'style="{cell};background:{STATE_COLOURS[state]}"></span>'
                )
            parts.append(
                f'<tr><td style="text-align:right;padding-right:6px">{escape(phase)}</td>'
                f'<td style="text-align:left;line-height:9px">{"".join(squares)}</td></tr>'
            )
    parts.append("</table>")
    if len(everything) > len(runs):
        parts.append(
            f'<div style="color:#6b7280">the first {len(runs)} of {len(everything)} runs: all are in report.html</div>'
        )
    return parts
