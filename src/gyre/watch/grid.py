"""The run × phase grid of the pages: rows of cells, each row labelled with its first run number.

Every run of the range has its cell, in run order, whatever became of it (``missing``: no
file; ``excluded``: left out with ``--skip``), so a cell's place is its run number. A cell's
tooltip says its run, phase, state, and where and how long it ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .board import BOARD_STATES
from .pictures import seconds_text, worker_label

__all__ = ["ENDED", "STATE_LABELS", "grid_html", "grid_width"]

#: how each state is named in the legend and the tooltips
STATE_LABELS = {**{state: state for state in BOARD_STATES}, "excluded": "excluded (--skip)"}
#: the states of a (phase, run) of the job that has ended
ENDED = ("done", "cached", "failed", "skipped")

_CODE_STATE = {code: state for state, code in BOARD_STATES.items()}


def grid_width(n_runs: int) -> int:
    """How many runs a row of the grid holds: all of a small job, else 25 or 50 (rows start at round steps)."""
    if n_runs <= 30:
        return max(1, n_runs)
    return 25 if n_runs <= 300 else 50


def grid_html(board: Mapping[str, Any], *, split: bool = False) -> dict[str, str]:
    """The grid as ``{"gyre-grid": html}``; with ``split``, an empty frame and then each head and row by its id.

    The frame holds one block per phase, each with its head (``gyre-head-<phase index>``) and
    its rows (``gyre-row-<phase index>-<row index>``, with ``data-first-run``); split, the
    frame comes first and the heads' and rows' contents follow under those ids.
    """
    runs, phases = board["runs"], board["phases"]
    where = {(str(bar[1]), int(bar[2])): bar for bar in board["bars"] if not bar[6]}
    running = {(r["phase"], r["run"]): r for r in board["running"]}
    errors = {(f["phase"], f["run"]): f["error"] for f in board["failures"] if not f.get("lineage")}
    width = grid_width(len(runs))
    parts: dict[str, str] = {}
    frame = []
    for p, phase in enumerate(phases):
        head_id = f"gyre-head-{p}"
        parts[head_id] = _head(phase, board["counts"][phase], len(runs))
        rows = []
        codes = board["grid"][phase]
        for r, first in enumerate(range(0, len(runs), width)):
            row_id = f"gyre-row-{p}-{r}"
            cells = [
                _cell(phase, run, _CODE_STATE[code], where, running, errors)
                for run, code in zip(runs[first : first + width], codes[first : first + width])
            ]
            parts[row_id] = (
                f'<span class="gyre-row-label">{runs[first]}</span><span class="gyre-cells">{"".join(cells)}</span>'
            )
            inner = "" if split else parts[row_id]
            rows.append(f'<div class="gyre-row" id="{row_id}" data-first-run="{runs[first]}">{inner}</div>')
        head = "" if split else parts[head_id]
        frame.append(
            f'<div class="gyre-phase" data-phase="{escape(phase)}">'
            f'<div class="gyre-phase-head" id="{head_id}">{head}</div>{"".join(rows)}</div>'
        )
    if not split:
        return {"gyre-grid": "".join(frame)}
    return {"gyre-grid": "".join(frame), **parts}


def _head(phase: str, counts: Mapping[str, int], n_runs: int) -> str:
    summary = [f"{sum(counts[s] for s in ENDED)}/{n_runs - counts['missing'] - counts['excluded']} ended"]
    states = ("running", "failed", "skipped", "cached", "missing", "excluded")
    summary += [f"{counts[s]} {STATE_LABELS[s]}" for s in states if counts[s]]
    return f'{escape(phase)} <span class="gyre-phase-counts">— {escape(", ".join(summary))}</span>'


def _cell(
    phase: str,
    run: int,
    state: str,
    where: Mapping[tuple[str, int], Sequence[Any]],
    running: Mapping[tuple[str, int], Mapping[str, Any]],
    errors: Mapping[tuple[str, int], str],
) -> str:
    title = f"run {run} · {phase} · {STATE_LABELS[state]}"
    bar = where.get((phase, run))
    live = running.get((phase, run))
    if state == "running" and live is not None:
        if live.get("total"):
            title += f" {live['completed']}/{live['total']}"
        if live.get("worker"):
            title += f" · on {worker_label(live['worker'])}"
    elif bar is not None:
        title += f" · {seconds_text(float(bar[4]) - float(bar[3]))} on {worker_label(str(bar[0]))}"
    if (phase, run) in errors:
        title += "\n" + errors[(phase, run)]
    return f'<span class="gyre-cell" data-run="{run}" data-state="{state}" title="{escape(title)}"></span>'
