"""Logging at gyre's entry points: the driver's log file in the workspace, for the length of a job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["JobThreadFilter", "driver_log"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def driver_log(workspace: Path, *, level: int = logging.INFO) -> Iterator[Path]:
    """Send the ``gyre`` logger to ``<workspace>/log/driver.log`` while the block runs.

    Jobs run side by side from several threads (several pipelines on one client) each keep
    their own lines: a record made in the thread of another open driver log goes to that
    one only (see :class:`JobThreadFilter`).
    """
    path = Path(workspace) / "log" / "driver.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    logger = logging.getLogger("gyre")
    handler.addFilter(JobThreadFilter(logger))
    previous = logger.level
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(previous)


class JobThreadFilter(logging.Filter):
    """Keeps a driver log's records: those of the thread that opened it, and those of threads
    (dask's, the page's publisher) that no other open driver log was opened in."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record belongs in this driver log."""
        if record.thread == self.thread:
            return True
        for handler in self.logger.handlers:
            for other in handler.filters:
                if isinstance(other, JobThreadFilter) and other is not self and other.thread == record.thread:
                    return False
        return True
