"""What a Spyral phase's ``run`` talks to, bridged to gyre: its message queue and its log."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import queue
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...progress import ProgressReporter

__all__ = [
    "KNOWN_ISSUES",
    "StatusQueue",
    "close_left_open",
    "collect_spyral_warnings",
    "describe_failure",
    "spyral_version",
]

log = logging.getLogger(__name__)

#: (Spyral phase class in the MRO, text in the error, what it is) for failures of Spyral's own code
KNOWN_ISSUES: tuple[tuple[str, str, str], ...] = (
    (
        "EstimationPhase",
        "cannot write 'Object' datatype",
        "known bug of attpc-spyral 1.1.2: EstimationPhase puts the Direction enum into a polars column "
        "that parquet cannot store (any polars version); no released Spyral fixes it, see the README "
        "section 'Coming from Spyral'",
    ),
    (
        "ClusterPhase",
        "parent_indicies",
        "known bug of attpc-spyral 1.1.2: ClusterPhase with overlap_join=OverlapJoinParameters(...) crashes; "
        "use overlap_join=None with continuity_join=ContinuityJoinParameters(...)",
    ),
    (
        "ClusterPhase",
        "only 0-dimensional arrays can be converted",
        "scikit-learn's HDBSCAN with cluster_selection_epsilon > 0 fails under numpy >= 2.2; "
        "keep numpy < 2.2 (as spyral-utils requires) or set cluster_selection_epsilon=0.0",
    ),
)


class StatusQueue:
    """The ``msg_queue`` a Spyral phase's ``run`` gets: its ``StatusMessage``s become gyre progress.

    A message's ``total`` (when positive) sets the run's total and its ``increment`` adds to
    the count; Spyral's bookkeeping messages (``increment=0, total=0``: "Waiting",
    "Complete") carry no progress and are only counted. Nothing is ever queued, so a
    phase can put as many messages as it likes.
    """

    def __init__(self, progress: ProgressReporter) -> None:
        self.progress = progress
        self.messages = 0

    def put(self, message: Any) -> None:
        """Take one ``StatusMessage`` (anything with ``increment`` and ``total``)."""
        self.messages += 1
        total = getattr(message, "total", 0)
        increment = getattr(message, "increment", 0)
        if isinstance(total, int) and total > 0 and total != self.progress.total:
            self.progress.set_total(total)
        if isinstance(increment, int) and increment > 0:
            self.progress.update(increment)

    put_nowait = put

    def empty(self) -> bool:
        """Always true: messages are consumed as they are put."""
        return True

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """There is never anything to get (raises ``queue.Empty``)."""
        raise queue.Empty

    def close(self) -> None:
        """Nothing to close."""


class _Collector(logging.Handler):
    def __init__(self, limit: int) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.limit = limit
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        log.warning("spyral (%s): %s", record.name, message)
        if len(self.messages) < self.limit:
            self.messages.append(message)


@contextmanager
def collect_spyral_warnings(limit: int = 20) -> Iterator[list[str]]:
    """Collect what Spyral logs at WARNING or above in this thread (also copied to gyre's log)."""
    logger = logging.getLogger("spyral")
    handler = _Collector(limit)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def spyral_version() -> str:
    """The installed attpc-spyral version, or ``"unknown"``."""
    try:
        return importlib.metadata.version("attpc-spyral")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def describe_failure(phase: Any, run: int, exc: BaseException) -> str:
    """One line on an exception raised inside a Spyral phase: what, where in Spyral, and any known cause."""
    kind = type(phase).__name__
    where = ""
    frame = _origin(phase, traceback.extract_tb(exc.__traceback__))
    if frame is not None:
        where = f" at {frame[0]}:{frame[1]} in {frame[2]}"
    message = (
        f"Spyral's {kind} ({phase.name!r}, attpc-spyral {spyral_version()}) raised on run {run}{where}: "
        f"{type(exc).__name__}: {exc}"
    )
    bases = {klass.__name__ for klass in type(phase).__mro__}
    for owner, text, hint in KNOWN_ISSUES:
        if owner in bases and text in str(exc):
            message += f" [{hint}]"
            break
    return message


def _origin(phase: Any, frames: traceback.StackSummary) -> tuple[str, int | None, str] | None:
    """The innermost frame in the phase's own module or in the spyral package, shortened."""
    roots: list[tuple[str, str]] = []
    module = sys.modules.get(type(phase).__module__)
    if module is not None and getattr(module, "__file__", None):
        roots.append((str(module.__file__), Path(str(module.__file__)).name))
    package = sys.modules.get("spyral")
    if package is not None and getattr(package, "__file__", None):
        roots.append((str(Path(str(package.__file__)).parent) + os.sep, "spyral/"))
    for frame in reversed(frames):
        for root, shown in roots:
            if frame.filename.startswith(root):
                name = shown + frame.filename[len(root) :] if shown.endswith("/") else shown
                return name, frame.lineno, frame.name
    # a phase class sent by value (defined in a script): the innermost frame outside gyre
    gyre_dir = str(Path(__file__).resolve().parents[2]) + os.sep
    for frame in reversed(frames):
        if not frame.filename.startswith(gyre_dir):
            return Path(frame.filename).name, frame.lineno, frame.name
    return None


def close_left_open(paths: Iterable[Path]) -> list[str]:
    """Close the HDF5 files among ``paths`` that a finished Spyral phase left open in this process.

    Spyral's phases open their HDF5 files without closing them and rely on garbage
    collection. In one Spyral process that goes unnoticed; on gyre the next phase of the run
    may run in another worker process, where HDF5's file lock would refuse a file this
    process still holds open for writing.
    """
    if "h5py" not in sys.modules:
        return []
    import h5py

    wanted = {os.path.realpath(p) for p in paths}
    closed = []
    for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        name = os.fsdecode(fid.name)
        if os.path.realpath(name) in wanted:
            h5py.File(fid).close()
            closed.append(name)
    return closed
