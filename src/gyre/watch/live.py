"""Watch: everything that shows a running pipeline, opened and closed around the driver.

It announces the dashboards (once, printed and logged), installs the gyre page on the
scheduler and feeds it, routes ``ctx.progress`` events from the workers to the terminal
display and the page, and records distributed's performance report if asked to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..progress import LOCAL_PROGRESS, progress_topic
from ..result import TaskOutcome
from .board import RunBoard
from .publisher import BoardPublisher, dashboard_lines
from .terminal import TerminalDisplay

if TYPE_CHECKING:
    from distributed import Client

    from ..execution.base import Engine, ExecutionModel

__all__ = ["DEFAULT_PERFORMANCE_REPORT", "Watch", "performance_report_path"]

log = logging.getLogger(__name__)

DEFAULT_PERFORMANCE_REPORT = "performance-report.html"


def performance_report_path(workspace: Path, value: str | Path | bool | None) -> Path | None:
    """Where to write the performance report: ``True`` → the default name in the workspace; relative → in it."""
    if value is None or value is False:
        return None
    if value is True:
        return Path(workspace) / DEFAULT_PERFORMANCE_REPORT
    path = Path(value)
    return path if path.is_absolute() else Path(workspace) / path


class Watch:
    """The driver's :class:`~gyre.job.submit.Listener` that fans outcomes and progress out to the displays.

    Use as a context manager around ``Driver.run()``; pass it in the driver's listeners.
    ``token`` is the job's: its progress topic (``gyre.progress.progress_topic``), so that
    several jobs on one client each hear only their own runs. ``cached_only`` (the count of
    cached (phase, run)s) tells the display that nothing is computed and no cluster started.
    """

    def __init__(
        self,
        display: TerminalDisplay,
        engine: Engine,
        model: ExecutionModel,
        board: RunBoard,
        *,
        performance_report: Path | None = None,
        publish_interval: float = 0.5,
        token: str,
        cached_only: int | None = None,
    ) -> None:
        self.display = display
        self.engine = engine
        self.model = model
        self.board = board
        self.performance_report = performance_report
        self.topic = progress_topic(token)
        self.cached_only = cached_only
        self.publisher: BoardPublisher | None = None
        if engine.client is not None:
            self.publisher = BoardPublisher(engine.client, board, interval=publish_interval)
        self._stack = ExitStack()

    def task_done(self, outcome: TaskOutcome) -> None:
        """Pass an outcome on to the terminal display and the board."""
        self.board.task_done(outcome)
        self.display.task_done(outcome)

    def part_done(self, outcome: TaskOutcome) -> None:
        """A part of a split run finished: the board counts it."""
        self.board.part_done(outcome)

    def run_progress(self, message: dict[str, Any]) -> None:
        """Pass a ``ctx.progress`` message on to the terminal display and the board."""
        self.display.run_progress(message)
        self.board.run_progress(message)

    def __enter__(self) -> Watch:
        client = self.engine.client
        page = self.publisher.start() if self.publisher is not None else False
        notes = dashboard_lines(self.model, self.engine, gyre_page=page)
        for note in notes:
            log.info("%s", note)
        if client is not None:
            client.subscribe_topic(self.topic, self._on_event)
            self._stack.callback(client.unsubscribe_topic, self.topic)
        else:  # the tasks run in this thread: their progress comes straight here
            local = LOCAL_PROGRESS.set(self.run_progress)
            self._stack.callback(LOCAL_PROGRESS.reset, local)
        self.display.start(
            dashboard_link=self.engine.dashboard_link,
            execution=self.model.describe(),
            notes=notes,
            cached_only=self.cached_only,
        )
        self._stack.callback(self.display.stop)
        if self.publisher is not None:
            self._stack.callback(self.publisher.close)
        self._stack.callback(self.board.finish)
        if self.performance_report is not None:
            self._record_performance(self.performance_report)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _on_event(self, event: Any) -> None:
        message = event[1] if isinstance(event, (tuple, list)) and len(event) == 2 else event
        if isinstance(message, dict):
            self.run_progress(message)

    def _record_performance(self, path: Path) -> None:
        client = self.engine.client
        if client is None:
            log.warning("no performance report: %s runs without a dask scheduler", self.model.name)
            return
        self._stack.enter_context(_performance_report(client, path))


@contextmanager
def _performance_report(client: Client, path: Path) -> Iterator[None]:
    """distributed's performance report of the block, written to ``path``; a failure to record it is only logged."""
    from distributed import performance_report

    path.parent.mkdir(parents=True, exist_ok=True)
    recorder = performance_report(filename=str(path))
    with client.as_current():
        try:
            recorder.__enter__()
        except Exception as exc:  # noqa: BLE001 - one unit: starting the recording
            log.warning("could not start the performance report: %s", exc)
            yield
            return
        try:
            yield
        finally:
            try:
                recorder.__exit__(None, None, None)
            except Exception as exc:  # noqa: BLE001 - one unit: writing the report; the results stand
                log.warning("could not write the performance report to %s: %s", path, exc)
            else:
                log.info("performance report written to %s", path)
