"""Where distributed's own log records go: a file per process, and only its warnings, one line each, to stderr.

distributed logs every start, connection and shutdown at INFO to stderr, so a 4-rank batch
job's log held some 60 such lines and the tracebacks of expected shutdown errors, and no
room for what the job did. In the processes gyre starts or runs a job in, :func:`route_dask_logs`
sends the records of the ``distributed`` logger (and of ``tornado``, ``bokeh`` and ``asyncio``,
whose errors are distributed's too) to one file per process, INFO and up with tracebacks, and only
warnings and errors to stderr, each as one line that says which process and where the
details are; while a server or client of the process shuts down, not even those
(:class:`QuietWhileClosing`). The handlers distributed installed are taken off and put
back afterwards.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DASK_LOGGERS", "dask_logs", "route_dask_logs"]

#: the loggers whose records are routed
DASK_LOGGERS = ("distributed", "tornado", "bokeh", "asyncio")
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FILE_HANDLER = "gyre-dask-file"
_STDERR_HANDLER = "gyre-dask-stderr"


class OneLineFormatter(logging.Formatter):
    """``[tag: ]LEVEL logger: message`` on one line; an exception as its type and message, not a traceback."""

    def __init__(self, tag: str | None, details: Path) -> None:
        super().__init__()
        self.prefix = f"{tag}: " if tag else ""
        self.details = details

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().strip()
        lines = message.splitlines() or [""]
        text = lines[0]
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and str(error) not in text:
            text += f" ({type(error).__name__}: {error})" if str(error) else f" ({type(error).__name__})"
        if error is not None or len(lines) > 1:
            text += f" [details in {self.details}]"
        return f"{self.prefix}{record.levelname} {record.name}: {text}"


class QuietWhileClosing(logging.Filter):
    """Keeps a record from stderr while a dask server or client of this process is shutting down.

    A cluster that closes with tasks still running (an interrupted job) or whose scheduler
    leaves before its workers logs lost tasks, cancelled instructions, closed comms and
    failed heartbeats: the expected noise of the end, not news. It stays in the file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not _closing()


def _closing() -> bool:
    """Whether a scheduler, worker, nanny or client of this process is shutting down now."""
    from distributed import Client, Nanny, Scheduler, Worker
    from distributed.core import Status

    # in progress only: a cluster closed earlier in this process (a notebook's last job) says nothing
    ending = {Status.closing, Status.closing_gracefully, Status.stopping}
    for kind in (Scheduler, Worker, Nanny):
        if any(server.status in ending for server in list(kind._instances)):
            return True
    return any(client.status == "closing" for client in list(Client._instances))


def route_dask_logs(path: Path, *, tag: str | None = None) -> Callable[[], None]:
    """Send distributed's records of this process to ``path`` and its warnings to stderr, one line each.

    ``tag`` starts each stderr line (``"rank 2 (worker)"``); returns the function that puts
    the previous handlers back. Once routed, a process stays on its first file: a second
    call does nothing (and its undo neither).
    """
    import distributed  # noqa: F401 - its import installs the handlers this replaces

    if any(h.get_name() == _FILE_HANDLER for h in logging.getLogger(DASK_LOGGERS[0]).handlers):
        return lambda: None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path)
    to_file.set_name(_FILE_HANDLER)
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter(FILE_FORMAT))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.set_name(_STDERR_HANDLER)
    to_stderr.setLevel(logging.WARNING)
    to_stderr.setFormatter(OneLineFormatter(tag, path))
    to_stderr.addFilter(QuietWhileClosing())
    roots = [logging.getLogger(name) for name in DASK_LOGGERS]
    saved = [(logger, list(logger.handlers), logger.level, logger.propagate) for logger in [*roots, *_children()]]
    for logger in roots:
        _drop_stderr_handlers(logger)
        logger.addHandler(to_file)
        logger.addHandler(to_stderr)
        logger.propagate = False  # one copy: not again through the root logger's handlers
        if logger.level == logging.NOTSET:  # distributed's own levels (tornado: critical) stand
            logger.setLevel(logging.INFO if logger.name == "distributed" else logging.WARNING)
    for logger, *_ in saved[len(roots) :]:
        # distributed gives some of its children (distributed.client, tornado.application) their
        # own stderr handler: their records go up to the routed parent instead
        if _drop_stderr_handlers(logger):
            logger.propagate = True

    def undo() -> None:
        for logger, handlers, level, propagate in saved:
            logger.removeHandler(to_file)
            logger.removeHandler(to_stderr)
            for previous in handlers:
                if previous not in logger.handlers:
                    logger.addHandler(previous)
            logger.setLevel(level)
            logger.propagate = propagate
        to_file.close()

    return undo


def _children() -> list[logging.Logger]:
    """The loggers below ``DASK_LOGGERS`` that exist now."""
    return [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and "." in name and name.split(".")[0] in DASK_LOGGERS
    ]


def _drop_stderr_handlers(logger: logging.Logger) -> bool:
    """Take off the plain stream handlers (distributed's, to stderr); whether there were any."""
    dropped = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    for handler in dropped:
        logger.removeHandler(handler)
    return bool(dropped)


@contextmanager
def dask_logs(path: Path, *, tag: str | None = None) -> Iterator[Path]:
    """:func:`route_dask_logs` for the length of the block."""
    undo = route_dask_logs(path, tag=tag)
    try:
        yield Path(path)
    finally:
        undo()
