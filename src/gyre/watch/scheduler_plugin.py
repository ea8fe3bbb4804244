"""The scheduler side of the gyre page: a ``SchedulerPlugin`` that keeps boards and serves ``/gyre``.

The driver registers :class:`GyreDashboardPlugin` through its client (so it works wherever the
client's scheduler runs: a local cluster, rank 0 of an MPI job, a shared scheduler). The plugin
adds two routes to the scheduler's HTTP server, next to dask's own pages:

- ``/gyre`` — the page (:func:`gyre.dashboard_page.page_html`),
- ``/gyre/state.json`` — the list of pipelines seen and the board of the selected one
  (``?pipeline=<id>``; the latest by default),

and a scheduler handler, :data:`BOARD_HANDLER`, through which the driver sends the latest board
of its pipeline (a few times a second at most). The last :attr:`~GyreDashboardPlugin.keep`
pipelines are kept, so the page still shows what earlier pipelines on a shared scheduler did.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

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

    def __getstate__(self) -> dict[str, Any]:
        return {"keep": self.keep, "boards": OrderedDict(), "serving": False}

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
                self.write(json.dumps(plugin.state(self.get_argument("pipeline", None))))

        application.add_handlers(
            r".*",
            [
                (rf"{PAGE_ROUTE}/?", PageHandler),
                (rf"{PAGE_ROUTE}/state\.json", StateHandler),
            ],
        )
        self.serving = True

    def receive(self, board: dict[str, Any]) -> bool:
        """Store the latest board of a pipeline (the scheduler handler the driver calls)."""
        key = str(board.get("id"))
        self.boards[key] = board
        self.boards.move_to_end(key)
        while len(self.boards) > self.keep:
            self.boards.popitem(last=False)
        return self.serving

    def state(self, pipeline: str | None = None) -> dict[str, Any]:
        """What ``state.json`` answers: every pipeline kept, and the board of ``pipeline`` (default: the latest)."""
        listing = [
            {"id": key, "pipeline": b.get("pipeline"), "started": b.get("started"), "finished": b.get("finished")}
            for key, b in self.boards.items()
        ]
        board = None
        if pipeline is not None:
            board = self.boards.get(pipeline)
        if board is None and self.boards:
            board = next(reversed(self.boards.values()))
        return {"pipelines": listing, "board": board}
