"""The sections of the gyre page and of ``report.html``, drawn as HTML from a board's data.

One implementation for both pages: the scheduler draws them from the board the driver pushed
(on each poll of the live page), :mod:`gyre.report.html` from the final board of a report.
Each function takes the board as :meth:`~gyre.watch.board.RunBoard.snapshot` gives it, with
all its ``bars`` and ``failures``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ..result import Status, TaskOutcome, group_failures
from ..runs import format_runs
from .board import BOARD_STATES
from .grid import ENDED, STATE_LABELS, grid_html
from .pictures import histograms_svg, phase_colour, seconds_text, timeline_svg, worker_label

__all__ = [
    "CLOCK_SECTIONS",
    "SECTION_IDS",
    "STATE_LABELS",
    "board_failures",
    "failures_html",
    "pace",
    "phase_key_html",
    "render_sections",
]

_CODE_STATE = {code: state for state, code in BOARD_STATES.items()}
_MAX_TRACEBACKS = 20

#: the sections of the pages, by the id of the element each fills
SECTION_IDS = (
    "gyre-status",
    "gyre-grid",
    "gyre-phase-key",
    "gyre-timeline",
    "gyre-histograms",
    "gyre-failures",
    "gyre-counts",
    "gyre-workers",
    "gyre-running",
    "gyre-children",
)
#: the sections that change with the clock alone, drawn again on every poll of a running pipeline
CLOCK_SECTIONS = ("gyre-status", "gyre-timeline", "gyre-running", "gyre-workers")


def pace(board: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Throughput and ETA from the outcomes so far: (phase, run)s per second, runs per minute, seconds left."""
    end = board.get("finished") or now
    elapsed = max(1e-9, end - float(board["started"]))
    ran = sum(1 for bar in board["bars"] if bar[5] in ("done", "failed") and not bar[6])
    phases, grid = board["phases"], board["grid"]
    to_finish = 0
    ended = 0
    for phase in phases:
        counts = board["counts"][phase]
        to_finish += sum(counts[s] for s in ENDED) + counts["waiting"] + counts["running"]
        ended += sum(counts[s] for s in ENDED)
    runs_ended = 0
    for column in range(len(board["runs"])):
        states = [_CODE_STATE[grid[phase][column]] for phase in phases]
        if all(s in ENDED for s in states):
            runs_ended += 1
    rate = ran / elapsed
    remaining = to_finish - ended
    eta = None
    if not board.get("finished") and remaining and rate > 0:
        eta = remaining / rate
    return {
        "elapsed": elapsed,
        "ran": ran,
        "ended": ended,
        "to_finish": to_finish,
        "remaining": remaining,
        "per_second": rate,
        "runs_ended": runs_ended,
        "runs_per_minute": 60 * runs_ended / elapsed,
        "eta": eta,
    }


def _status(board: Mapping[str, Any], now: float) -> str:
    p = pace(board, now)
    parts = [
        "finished" if board.get("finished") else "running",
        f"{p['ended']}/{p['to_finish']} (phase, run)s ended",
        f"{board['n_failures']} failed",
        f"{seconds_text(p['elapsed'])} elapsed",
        f'<span id="gyre-throughput">{p["per_second"]:.3g} (phase, run)s/s · '
        f"{p['runs_per_minute']:.3g} runs/min</span>",
    ]
    if p["eta"] is not None:
        parts.append(f'<span id="gyre-eta">ETA ≈ {seconds_text(p["eta"])}</span>')
    elif not board.get("finished"):
        parts.append('<span id="gyre-eta">ETA: after the first (phase, run)s end</span>')
    return " · ".join(parts)


def _counts(board: Mapping[str, Any]) -> str:
    states = [s for s in BOARD_STATES if board["finished"] is None or s not in ("waiting", "running")]
    head = "".join(f"<th>{escape(STATE_LABELS[s])}</th>" for s in states)
    rows = [f"<tr><th>phase</th>{head}<th>total</th><th>mean</th><th>median</th><th>max</th></tr>"]
    for phase in board["phases"]:
        counts, timing = board["counts"][phase], board["timings"][phase]
        cells = "".join(f'<td data-state="{s}">{counts[s]}</td>' for s in states)
        times = "".join(f"<td>{seconds_text(timing[k])}</td>" for k in ("total", "mean", "median", "max"))
        rows.append(f'<tr data-phase="{escape(phase)}"><td>{escape(phase)}</td>{cells}{times}</tr>')
    return "".join(rows)


def _workers(board: Mapping[str, Any], now: float) -> str:
    table: dict[str, dict[str, Any]] = {}
    for bar in board["bars"]:
        row = table.setdefault(str(bar[0]), {"ran": 0, "failed": 0, "busy": 0.0, "now": []})
        row["ran"] += 1
        row["failed"] += bar[5] == "failed"
        row["busy"] += float(bar[4]) - float(bar[3])
    for cell in board["running"]:
        if cell.get("worker"):
            row = table.setdefault(str(cell["worker"]), {"ran": 0, "failed": 0, "busy": 0.0, "now": []})
            row["now"].append(f"{cell['phase']} · run {cell['run']}")
    if not table:
        return '<tr><td class="gyre-muted">no worker has reported yet</td></tr>'
    elapsed = max(1e-9, (board.get("finished") or now) - float(board["started"]))
    rows = [
        "<tr><th>worker</th><th>host</th><th>ran</th><th>failed</th><th>busy</th><th>busy %</th>"
        "<th>running now</th></tr>"
    ]
    for worker in sorted(table):
        row = table[worker]
        label = worker_label(worker)
        host = label.rsplit(":", 1)[0]
        rows.append(
            f'<tr data-worker="{escape(worker)}"><td>{escape(label)}</td><td>{escape(host)}</td><td>{row["ran"]}</td>'
            f"<td>{row['failed']}</td><td>{seconds_text(row['busy'])}</td><td>{100 * row['busy'] / elapsed:.0f}</td>"
            f"<td>{escape(', '.join(row['now']))}</td></tr>"
        )
    return "".join(rows)


def _running(board: Mapping[str, Any], now: float) -> str:
    lines = []
    for r in board["running"]:
        line = f'<div data-phase="{escape(r["phase"])}" data-run="{r["run"]}">{escape(r["phase"])} · run {r["run"]}'
        if r.get("parts"):
            line += f" · {escape(str(r['parts']))}"
        if r.get("worker"):
            line += f" · on {escape(worker_label(r['worker']))}"
        if r.get("started"):
            line += f" · {seconds_text(max(0.0, now - float(r['started'])))}"
        if r.get("total"):
            share = min(100.0, 100 * r["completed"] / r["total"])
            line += f'<span class="gyre-bar"><i style="width:{share:.1f}%"></i></span>{r["completed"]}/{r["total"]}'
        lines.append(line + "</div>")
    more = board["n_running"] - len(board["running"])
    if more > 0:
        lines.append(f'<div class="gyre-muted">… and {more} more</div>')
    if not board["n_running"]:
        lines.append(
            f'<div class="gyre-muted">{"nothing: the pipeline has ended" if board["finished"] else "nothing yet"}</div>'
        )
    return "".join(lines)


def board_failures(board: Mapping[str, Any]) -> list[TaskOutcome]:
    """The failures a board carries, as outcomes (what :func:`failures_html` groups)."""
    return [
        TaskOutcome(
            phase=f["phase"],
            run=f["run"],
            status=Status.FAILED,
            error=f["error"],
            error_type=f.get("error_type"),
            traceback=f.get("traceback") or None,
            worker=f.get("worker"),
            lineage=tuple(f.get("lineage") or ()),
        )
        for f in board["failures"]
    ]


def failures_html(outcomes: Iterable[TaskOutcome], *, more: int = 0) -> str:
    """The failures grouped by phase and message: one ``<details>`` per group, its tracebacks inside."""
    failed = [o for o in outcomes if o.status is Status.FAILED]
    if not failed:
        return '<div class="gyre-muted">none</div>'
    workers = {(o.phase, o.run): o.worker for o in failed}
    parts = []
    for group in group_failures(failed):
        key = f"{group.phase}:{group.runs[0]}"
        count = f"{len(group.runs)} run{'s' if len(group.runs) != 1 else ''}"
        kind = f"{group.error_type}: " if group.error_type and not group.message.startswith(group.error_type) else ""
        parts.append(
            f'<details class="gyre-failure-group" data-key="{escape(key)}" data-phase="{escape(group.phase)}" '
            f'data-runs="{escape(",".join(map(str, group.runs)))}"><summary class="gyre-failure">'
            f"<b>{escape(group.phase)}</b> · {count} ({escape(format_runs(list(group.runs)))}) · "
            f"{escape(kind + group.message)}</summary>"
        )
        for run in group.runs[:_MAX_TRACEBACKS]:
            worker = workers.get((group.phase, run))
            where = f" on {escape(worker_label(worker))}" if worker else ""
            text = group.tracebacks.get(run) or "(no traceback was sent)"
            parts.append(
                f'<div class="gyre-traceback" data-run="{run}"><div class="gyre-muted">run {run}{where}</div>'
                f"<pre>{escape(text)}</pre></div>"
            )
        if len(group.runs) > _MAX_TRACEBACKS:
            rest = format_runs(list(group.runs[_MAX_TRACEBACKS:]))
            parts.append(f'<div class="gyre-muted">and runs {escape(rest)}, with the same message</div>')
        parts.append("</details>")
    if more > 0:
        parts.append(f'<div class="gyre-muted">… and {more} more failures, not kept</div>')
    return "".join(parts)


def _children(board: Mapping[str, Any]) -> str:
    lines = []
    for child in board["children"]:
        counts = ", ".join(f"{n} {state}" for state, n in child["counts"].items())
        lineage = " / ".join(child["lineage"])
        lines.append(
            f'<div class="gyre-child" data-generation="{child["generation"]}">generation {child["generation"]} · '
            f"{escape(lineage)} · {escape(counts)}</div>"
        )
    return "".join(lines)


def phase_key_html(phases: Sequence[str]) -> str:
    """The timeline's key: each phase's colour, and how failed and running bars look."""
    keys = [
        f'<span class="gyre-phase-key" data-phase="{escape(p)}"><span class="gyre-cell" '
        f'style="background:{phase_colour(phases, p)}"></span>{escape(p)}</span>'
        for p in phases
    ]
    keys.append('<span><span class="gyre-cell" style="border:2px solid #d7263d"></span>failed</span>')
    keys.append(
        '<span><span class="gyre-cell" style="border:1px dashed #3b82f6;background:#c7cdd6"></span>running</span>'
    )
    return " ".join(f'<span class="gyre-legend">{k}</span>' for k in keys)


def render_sections(
    board: Mapping[str, Any],
    now: float,
    *,
    failures: Sequence[TaskOutcome] | None = None,
    split_grid: bool = False,
    only: Collection[str] | None = None,
) -> dict[str, str]:
    """Every section of the page as HTML, by the id of the element it fills.

    ``failures`` (default: those the board kept) lets the report pass every failure in full.
    ``split_grid`` gives the grid as an empty frame (``gyre-grid``) followed by each phase's
    head and each row of cells by their own ids, so a live page is sent only the rows that
    changed; ``only`` draws just the sections named (those that move with the clock, say).
    """
    end = board.get("finished") or now
    drawers: dict[str, Callable[[], str]] = {
        "gyre-status": lambda: _status(board, now),
        "gyre-counts": lambda: _counts(board),
        "gyre-workers": lambda: _workers(board, now),
        "gyre-running": lambda: _running(board, now),
        "gyre-failures": lambda: _failures(board, failures),
        "gyre-timeline": lambda: timeline_svg(
            board["bars"], board["running"], phases=board["phases"], start=board["started"], end=end
        ),
        "gyre-histograms": lambda: histograms_svg(board["bars"], phases=board["phases"]),
        "gyre-children": lambda: _children(board),
        "gyre-phase-key": lambda: phase_key_html(board["phases"]),
    }
    drawn: dict[str, str] = {}
    for name in SECTION_IDS:
        if only is not None and name not in only:
            continue
        if name == "gyre-grid":
            drawn.update(grid_html(board, split=split_grid))
        else:
            drawn[name] = drawers[name]()
    return drawn


def _failures(board: Mapping[str, Any], failures: Sequence[TaskOutcome] | None) -> str:
    kept = board_failures(board) if failures is None else failures
    return failures_html(kept, more=board["n_failures"] - len(kept))
