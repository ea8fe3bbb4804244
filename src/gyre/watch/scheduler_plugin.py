"""The scheduler side of the gyre page: a ``SchedulerPlugin`` that keeps boards and serves ``/gyre``.

The driver registers :class:`GyreDashboardPlugin` through its client (so it works wherever the
client's scheduler runs: a local cluster, rank 0 of an MPI job, a shared scheduler). The plugin
adds two routes to the scheduler's HTTP server, next to dask's own pages:

- ``/gyre`` — the page (:func:`gyre.dashboard_page.page_html`),
- ``/gyre/state.json`` — the list of pipelines seen, the board of the selected one
  (``?pipeline=<id>``; the latest by default) without its bars and tracebacks, and the page's
  sections drawn from it (``html``); with ``&since=<version>`` and no change since, only the
  sections that move with the clock,

and a scheduler handler, :data:`BOARD_HANDLER`, through which the driver sends the latest board
of its pipeline (a few times a second at most), with only the bars and failures that are new
since its last send: the plugin appends them to those it keeps. The last
:attr:`~GyreDashboardPlugin.keep` pipelines are kept, so the page still shows what earlier
pipelines on a shared scheduler did.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from html import escape
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .board import BOARD_FORMAT

__all__ = ["BOARD_HANDLER", "PAGE_ROUTE", "GyreDashboardPlugin"]

log = logging.getLogger(__name__)

#: the scheduler handler (comm op) the driver sends boards to
BOARD_HANDLER = "gyre_board"
#: where the page is served on the scheduler's HTTP server
PAGE_ROUTE = "/gyre"


class GyreDashboardPlugin(SchedulerPlugin):
    """Keeps the latest board of each pipeline and serves the gyre page from the scheduler."""

    name = "gyre-dashboard"
    idempotent = True

    def __init__(self, *, keep: int = 20) -> None:
        self.keep = keep
        self.boards: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.serving = False
        self._drawn: dict[str, _Drawn] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"keep": self.keep, "boards": OrderedDict(), "serving": False, "_drawn": {}}

    async def start(self, scheduler: Any) -> None:
        """Add the board handler and the page's routes to the scheduler."""
        scheduler.handlers[BOARD_HANDLER] = self.receive
        application = getattr(scheduler, "http_application", None)
        if application is None:
            log.warning("the scheduler has no HTTP server: the gyre page is not served")
            return
        from tornado import web

        from .browser_page import page_html

        page = page_html()

        class PageHandler(web.RequestHandler):
            def get(self) -> None:
                self.set_header("Content-Type", "text/html; charset=utf-8")
                self.set_header("Cache-Control", "no-store")
                self.write(page)

        plugin = self

        class StateHandler(web.RequestHandler):
            def get(self) -> None:
                self.set_header("Content-Type", "application/json")
                self.set_header("Cache-Control", "no-store")
                since = self.get_argument("since", None)
                version = int(since) if since and since.lstrip("-").isdigit() else None
                self.write(json.dumps(plugin.state(self.get_argument("pipeline", None), since=version)))

        application.add_handlers(
            r".*",
            [
                (rf"{PAGE_ROUTE}/?", PageHandler),
                (rf"{PAGE_ROUTE}/state\.json", StateHandler),
            ],
        )
        self.serving = True

    def receive(self, board: dict[str, Any]) -> dict[str, Any]:
        """Store the latest board of a pipeline (the scheduler handler the driver calls).

        The board's ``bars`` and ``failures`` are those from ``bars_from`` and ``failures_from``
        on; they are appended to the ones kept. The answer says how many of each the plugin
        now holds, which is where the driver's next send starts.
        """
        key = str(board.get("id"))
        previous = self.boards.get(key)
        board = dict(board)
        for name in ("bars", "failures"):
            kept = previous.get(name, []) if previous is not None else []
            board[name] = _appended(kept, board.get(name) or [], int(board.get(f"{name}_from") or 0))
        self.boards[key] = board
        self.boards.move_to_end(key)
        while len(self.boards) > self.keep:
            self._drawn.pop(self.boards.popitem(last=False)[0], None)
        return {"serving": self.serving, "bars": len(board["bars"]), "failures": len(board["failures"])}

    def state(self, pipeline: str | None = None, *, since: int | None = None) -> dict[str, Any]:
        """What ``state.json`` answers: every pipeline kept, and the board of ``pipeline`` (default: the latest).

        ``html`` holds the page's sections drawn from that board (the grid split in rows, see
        :func:`~gyre.watch.grid.grid_html`); with ``since``, the board version the page shows,
        only those that changed since then, and those that move with the clock while it runs.
        """
        listing = [
            {"id": key, "pipeline": b.get("pipeline"), "started": b.get("started"), "finished": b.get("finished")}
            for key, b in self.boards.items()
        ]
        board = None
        if pipeline is not None:
            board = self.boards.get(pipeline)
        if board is None and self.boards:
            board = next(reversed(self.boards.values()))
        if board is None:
            return {"pipelines": listing, "board": None, "html": {}}
        key = str(board.get("id"))
        if board.get("format") != BOARD_FORMAT:
            found = escape(str(board.get("format")))
            note = (
                f"this pipeline's driver sends boards as {found}, this page draws {BOARD_FORMAT}: use one gyre version"
            )
            return {"pipelines": listing, "board": None, "html": {"gyre-status": note}}
        drawn = self._drawn.setdefault(key, _Drawn())
        drawn.update(board, time.time())
        html = drawn.since(since if pipeline == key else None, running=not board.get("finished"))
        light = {k: v for k, v in board.items() if k not in ("bars", "failures")}
        light["failures"] = [{k: v for k, v in f.items() if k != "traceback"} for f in board.get("failures", [])]
        return {"pipelines": listing, "board": light, "html": html}


class _Drawn:
    """The sections last drawn for one board, and the board version at which each last changed."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.html: dict[str, str] = {}
        self.changed: dict[str, int] = {}

    def update(self, board: dict[str, Any], now: float) -> None:
        """Draw again what may have changed: everything for a new version, else the clock's sections."""
        from .sections import CLOCK_SECTIONS, render_sections

        version = int(board["version"])
        if version == self.version:
            if board.get("finished"):
                return
            fresh = render_sections(board, now, split_grid=True, only=CLOCK_SECTIONS)
        else:
            fresh = render_sections(board, now, split_grid=True)
        for name, text in fresh.items():
            if self.html.get(name) != text:
                self.html[name] = text
                self.changed[name] = version
        self.version = version

    def since(self, version: int | None, *, running: bool) -> dict[str, str]:
        """The sections a page showing ``version`` lacks (all of them for ``None`` or an unknown version)."""
        from .sections import CLOCK_SECTIONS

        if version is None or self.version is None or version > self.version:
            return dict(self.html)
        wanted = {name for name, at in self.changed.items() if at > version}
        if running:
            wanted.update(CLOCK_SECTIONS)
        if "gyre-grid" in wanted:  # a new frame: its heads and rows with it
            wanted.update(name for name in self.html if name.startswith(("gyre-head-", "gyre-row-")))
        return {name: text for name, text in self.html.items() if name in wanted}


def _appended(kept: list[Any], new: list[Any], offset: int) -> list[Any]:
    """``kept`` with ``new`` placed from ``offset`` on (a resend overwrites; a gap keeps ``kept`` as it is)."""
    if offset > len(kept):
        return kept
    if offset == len(kept):
        kept.extend(new)
        return kept
    return kept[:offset] + list(new)
