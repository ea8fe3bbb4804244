"""The driver side of the dashboards: the link to announce, and the board sent to the gyre page."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .board import RunBoard

if TYPE_CHECKING:
    from distributed import Client

    from ..execution.base import Engine, ExecutionModel

__all__ = ["BoardPublisher", "dashboard_lines", "gyre_page_link"]

log = logging.getLogger(__name__)


def gyre_page_link(dashboard_link: str | None) -> str | None:
    """The gyre page beside a dask dashboard link (``.../status`` → ``.../gyre``)."""
    if not dashboard_link:
        return None
    base = dashboard_link.rstrip("/")
    if base.endswith("/status"):
        base = base[: -len("/status")]
    return f"{base}/gyre"


def dashboard_lines(model: ExecutionModel, engine: Engine, *, gyre_page: bool) -> list[str]:
    """What to print (once) and log about the dashboards: the links, the scheduler's host, how to reach them."""
    link = engine.dashboard_link
    if not link:
        return []
    where = ""
    mpi = model.name == "mpi"
    host = model.scheduler_host or (model.hosts[0] if mpi and model.hosts else None)  # rank 0's
    if host:
        where = f" on {host}" + (" (rank 0)" if mpi else "")
    lines = [f"dask dashboard{where} at {link}"]
    if gyre_page:
        lines.append(f"gyre page{where} at {gyre_page_link(link)}")
    text = model.dashboard_tunnel_hint()
    if text:
        lines.append(f"from your own machine: {text}")
    if gyre_page:
        lines.append(
            "per-phase progress, timeline and failures are on the gyre page: dask's Progress panel on /status "
            "counts only the tasks in flight, and a failed run is not an erred task there"
        )
    return lines


class BoardPublisher:
    """Sends a :class:`RunBoard` to the gyre page on the scheduler, at most every ``interval`` seconds.

    ``start`` registers the scheduler plugin (once per scheduler) and sends the first board;
    a background thread then sends the board again whenever it changed, with only the bars and
    failures the plugin does not hold yet; ``close`` sends the final one. Nothing here is ever
    fatal to the pipeline: a scheduler that cannot take the plugin (no gyre installed there,
    pickling disabled) just means no gyre page.
    """

    def __init__(self, client: Client, board: RunBoard, *, interval: float = 0.5) -> None:
        self.client = client
        self.board = board
        self.interval = interval
        self.serving = False
        self._sent = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._held = {"bars": 0, "failures": 0}

    def start(self) -> bool:
        """Install the page on the scheduler and publish the first board; ``False`` if there is no page."""
        from .scheduler_plugin import GyreDashboardPlugin

        try:
            self.client.register_plugin(GyreDashboardPlugin())
        except Exception as exc:  # noqa: BLE001 - one unit: installing the page; the pipeline goes on
            log.warning("the gyre page could not be installed on the scheduler: %s", exc)
            return False
        self.serving = bool(self._send())
        self._thread = threading.Thread(target=self._loop, name="gyre-board-publisher", daemon=True)
        self._thread.start()
        return self.serving

    def close(self) -> None:
        """Stop the background sends and publish the final board."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._send()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.board.version != self._sent:
                self._send()

    def _send(self) -> Any:
        from .scheduler_plugin import BOARD_HANDLER

        version = self.board.version
        snapshot = self.board.snapshot(bars_from=self._held["bars"], failures_from=self._held["failures"])
        try:
            answer = self.client.sync(getattr(self.client.scheduler, BOARD_HANDLER), board=snapshot)
        except Exception as exc:  # noqa: BLE001 - one unit: one send; the next one may work
            self._failures += 1
            if self._failures == 1:
                log.warning("could not send the pipeline's state to the gyre page: %s", exc)
            return False
        if not isinstance(answer, dict):  # a plugin of an older gyre on a shared scheduler: it takes what it gets
            self._sent = version
            return bool(answer)
        self._held = {name: int(answer.get(name, 0)) for name in self._held}
        if self._held["bars"] < snapshot["n_bars"] or self._held["failures"] < snapshot["n_failures_kept"]:
            return answer.get("serving")  # the plugin missed some: the next send starts where it stopped
        self._sent = version
        return answer.get("serving")
