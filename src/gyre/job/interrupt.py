"""Interruption: SIGINT (Ctrl-C) and SIGTERM (what Slurm sends before the walltime) stop a job cleanly.

While :func:`stop_on_signals` is active, the first SIGINT or SIGTERM raises
``PipelineInterrupted`` in the main thread: the driver stops submitting, cancels what is
in flight, keeps every finished (phase, run) (their manifest records are already written),
writes the report so far and re-raises. A second signal during that cleanup gives up on
it at once (a plain ``KeyboardInterrupt``); the next start then resumes from the manifest
and takes the lock over. One signal often arrives more than once: ``mpiexec`` and ``srun``
pass it on to every rank while Slurm (``scancel``, the walltime) or a terminal's Ctrl-C
also signals the whole process group. Signals within ``SAME_SIGNAL_WITHIN`` seconds of the
first are therefore taken as that same signal, not as a second one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ..errors import PipelineInterrupted
from ..result import TaskOutcome
from .chains import RunChain

__all__ = ["AGAIN_AFTER", "SAME_SIGNAL_WITHIN", "SIGNALS", "fill_unfinished", "stop_before_the_job", "stop_on_signals"]

log = logging.getLogger(__name__)

#: the signals that interrupt a pipeline
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: seconds within which a repeated signal is the first one delivered again (launcher, process group)
SAME_SIGNAL_WITHIN = 2.0
#: seconds after which an interruption that nothing took up is raised again
AGAIN_AFTER = 1.0


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into ``PipelineInterrupted`` for the block (main thread only; else a no-op).

    The exception is raised wherever the main thread is. If it lands in code that swallows
    exceptions (a weakref callback or a ``__del__`` that runs during garbage collection prints
    and drops them), it is raised again every ``AGAIN_AFTER`` seconds until the code that
    stops the job takes it up (:meth:`PipelineInterrupted.take`) or the block is left.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[float] = []
    taken = threading.Event()
    again = threading.Event()  # set by the watcher: the next signal is its own, not a new one
    left = threading.Event()
    main = threading.main_thread().ident

    def interrupt(signum: int) -> PipelineInterrupted:
        exc = PipelineInterrupted(signum)
        exc.taken = taken
        return exc

    def watch(signum: int) -> None:
        while not taken.wait(AGAIN_AFTER) and not left.is_set():
            log.debug("%s was not taken up yet: raising it again", signal.Signals(signum).name)
            again.set()
            if main is not None:
                signal.pthread_kill(main, signum)

    def handler(signum: int, frame: FrameType | None) -> None:
        if again.is_set():
            again.clear()
            if not taken.is_set():
                raise interrupt(signum)
            return
        if received and time.monotonic() - received[0] < SAME_SIGNAL_WITHIN:
            log.debug("%s again: the same signal, delivered more than once", signal.Signals(signum).name)
            return
        if received:
            log.error("second %s: stopping without further cleanup", signal.Signals(signum).name)
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        received.append(time.monotonic())
        log.warning("received %s: stopping the submission of new work", signal.Signals(signum).name)
        threading.Thread(target=watch, args=(signum,), name="gyre-interrupt-watch", daemon=True).start()
        raise interrupt(signum)

    previous: dict[signal.Signals, Any] = {}
    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        left.set()  # before the handlers go: the watcher must not signal into the previous ones
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def _handled_by(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM for the block; the previous handlers afterwards."""
    previous: dict[signal.Signals, Any] = {}
    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def stop_before_the_job() -> Iterator[None]:
    """SIGINT/SIGTERM before the job's own handling starts: ``PipelineInterrupted`` without a report.

    ``gyre run`` and ``start_pipeline`` enter it first thing, so a signal while the pipeline
    module is imported, the MPI ranks start or the workers join still ends the process with
    status 128 + the signal, no traceback, every lock released on the way out. Once the job
    runs, :func:`stop_on_signals` (driver) or the serving ranks' own handler takes over.
    Main thread only; elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[float] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received and time.monotonic() - received[0] < SAME_SIGNAL_WITHIN:
            return  # the same signal from the launcher and the process group; the first is on its way out
        received.append(time.monotonic())
        log.warning("received %s before the job started: stopping", signal.Signals(signum).name)
        raise PipelineInterrupted(signum)

    with _handled_by(handler):
        yield


def fill_unfinished(chains: Sequence[RunChain], outcomes: Sequence[TaskOutcome], reason: str) -> list[TaskOutcome]:
    """``outcomes`` plus a ``skipped`` outcome for every (phase, run) of ``chains`` that has none.

    A signal can land between a task's completion and its bookkeeping; the report must
    still have one outcome per (phase, run).
    """
    seen = {(o.phase, o.run) for o in outcomes}
    filled = list(outcomes)
    for chain in chains:
        for spec in chain.tasks:
            if (spec.phase.name, spec.run) not in seen:
                filled.append(spec.skipped(reason))
    return filled
