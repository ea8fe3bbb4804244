"""Logging at gyre's entry points: the driver's log file in the workspace, for the length of a job."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["driver_log"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def driver_log(workspace: Path, *, level: int = logging.INFO) -> Iterator[Path]:
    """Send the ``gyre`` logger to ``<workspace>/log/driver.log`` while the block runs."""
    path = Path(workspace) / "log" / "driver.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    logger = logging.getLogger("gyre")
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
