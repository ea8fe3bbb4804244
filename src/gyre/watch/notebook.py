"""The display inside a Jupyter notebook: one HTML table in the cell, updated in place while the job runs.

A kernel's stdout is no terminal, so the terminal display would fall back to a text line
every 30 seconds; in a kernel (:func:`in_notebook`) it shows this view instead, through
IPython's display handles (``display(..., display_id=True)`` then ``handle.update``), which
every Jupyter front end (and ``nbclient``) applies to the output already in the cell.
"""

from __future__ import annotations

import sys
from html import escape
from typing import Any, Protocol

from ..result import FailureGroup
from .board import STATE_COLOURS
from .failures import failure_line

__all__ = ["NotebookView", "ShownDisplay", "in_notebook", "progress_html"]


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code, nbclient), where rich HTML output shows."""
    ipython = sys.modules.get("IPython")
    if ipython is None:  # never imported: certainly not a kernel, and importing it costs
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ShownDisplay(Protocol):
    """What the view reads of the display it shows (``gyre.watch.terminal.TerminalDisplay``)."""

    title: str | None
    n_runs: int

    def elapsed(self) -> float: ...
    def eta(self) -> float | None: ...
    def phase_counts(self) -> list[tuple[str, int, int, int]]: ...
    def running_now(self) -> tuple[list[dict[str, Any]], int]: ...
    def failure_groups(self) -> list[FailureGroup]: ...


class NotebookView:
    """An HTML display in the current cell, re-rendered from a :class:`TerminalDisplay` on ``update``."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._shown = ""

    def show(self, display: ShownDisplay) -> None:
        """Put the view in the cell (once)."""
        from IPython.display import HTML
        from IPython.display import display as show

        self._shown = progress_html(display)
        self._handle = show(HTML(self._shown), display_id=True)

    def update(self, display: ShownDisplay) -> None:
        """Re-render the view in place, if anything changed."""
        from IPython.display import HTML

        html = progress_html(display)
        if self._handle is None or html == self._shown:
            return
        self._shown = html
        self._handle.update(HTML(html))


_BAR = (
    "display:inline-block;width:220px;height:10px;background:#e5e7eb;border-radius:3px;"
    "overflow:hidden;vertical-align:middle"
)


def progress_html(display: ShownDisplay) -> str:
    """The display's state as HTML: a bar per phase (finished, failed, skipped), the runs computing, the failures."""
    elapsed, eta = display.elapsed(), display.eta()
    head = f"gyre · {escape(display.title)}" if display.title else "gyre"
    timing = f"{elapsed:.1f} s" + (f" · ETA {eta:.0f} s" if eta else "")
    rows = []
    for phase, finished, failed, skipped in display.phase_counts():
        segments = "".join(
            f'<span style="display:inline-block;height:100%;width:{100 * n / max(display.n_runs, 1):.2f}%;'
            f'background:{STATE_COLOURS[state]}"></span>'
            for state, n in (("done", finished - failed), ("failed", failed), ("skipped", skipped))
            if n
        )
        text = f"{finished}/{display.n_runs}"
        text += f" · {skipped} skipped" if skipped else ""
        text += f" · {failed} failed" if failed else ""
        rows.append(
            f'<tr class="gyre-progress-phase" data-phase="{escape(phase)}">'
            f'<td style="text-align:right;padding-right:8px">{escape(phase)}</td>'
            f'<td><span style="{_BAR}">{segments}</span></td><td style="padding-left:8px">{text}</td></tr>'
        )
    computing, n_running = display.running_now()
    running = []
    for message in computing:
        total, completed = message.get("total"), message.get("completed") or 0
        amount = f" {100 * completed / total:.0f}%" if total and completed else ""
        running.append(f"{escape(str(message.get('phase')))} run {message.get('run')}{amount}")
    if n_running > len(computing):
        running.append(f"+{n_running - len(computing)} more")
    parts = [
        '<div class="gyre-progress" style="font-family:system-ui,sans-serif;font-size:13px">',
        f"<div><b>{head}</b> <span style='color:#6b7280'>{timing}</span></div>",
        f"<table>{''.join(rows)}</table>",
    ]
    if running:
        parts.append(f'<div class="gyre-progress-running" style="color:#6b7280">running: {", ".join(running)}</div>')
    for group in display.failure_groups()[:10]:
        parts.append(
            f'<div class="gyre-progress-failure" style="color:{STATE_COLOURS["failed"]};font-family:monospace">'
            f"{escape(group.phase)}: {escape(failure_line(group))}</div>"
        )
    parts.append("</div>")
    return "".join(parts)
