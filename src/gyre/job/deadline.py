"""Finishing inside the walltime: the job's deadline, where it comes from, and the stop at its margin.

A deadline comes from ``start_pipeline(deadline=...)``, ``gyre run --walltime`` or, by
default, the end time of the Slurm job the driver runs in (``SLURM_JOB_END_TIME`` where
Slurm sets it, 23.02 and later; otherwise ``squeue -h -j $SLURM_JOB_ID -o %e``). The job
stops ``margin`` seconds before it (:func:`default_margin`), leaving time to cancel what
runs, write the records and the report, release the lock and shut the cluster down:

* the driver does not submit a run whose predicted cost (``gyre.job.costs``) ends after
  that point, and a worker does not start a (phase, run) that would (``TaskSpec.start_by``);
  such (phase, run)s are ``skipped`` with :data:`NOT_STARTED`;
* at that point :func:`stop_at` raises ``DeadlineReached`` in the driver, which stops the
  job exactly as SIGTERM does (``gyre.job.interrupt``).

Either way ``start_pipeline`` raises ``DeadlineReached`` (exit status 3 from ``gyre run``)
once the report is written: run the same job again to do the rest.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType

from ..errors import DeadlineReached
from .options import JobOptions

__all__ = [
    "AGAIN_AFTER",
    "MAX_MARGIN",
    "MIN_MARGIN",
    "NOT_STARTED",
    "Deadline",
    "default_margin",
    "resolve_deadline",
    "slurm_end_time",
    "stop_at",
]

log = logging.getLogger(__name__)

#: why a (phase, run) was not started (the reason of its ``skipped`` outcome)
NOT_STARTED = "not started: predicted to end after the deadline"
#: the default margin is a tenth of the time left at the job's start, within these bounds (seconds)
MIN_MARGIN = 10.0
MAX_MARGIN = 180.0
#: seconds after which the stop is raised again if the first one was swallowed
AGAIN_AFTER = 1.0


def default_margin(seconds_left: float) -> float:
    """The default margin before a deadline ``seconds_left`` away: a tenth of it, from 10 s to 3 minutes.

    It covers cancelling, the report and the cluster's shutdown (a local cluster of 2 workers
    took 4 s to close on a loaded 2-core machine).
    """
    return min(MAX_MARGIN, max(MIN_MARGIN, 0.1 * seconds_left))


@dataclass(frozen=True)
class Deadline:
    """When the job must be over (``at``, epoch seconds), the ``margin`` kept free, and where it came from."""

    at: float
    margin: float
    source: str

    @property
    def stop_at(self) -> float:
        """When the job stops: the deadline less the margin (epoch seconds)."""
        return self.at - self.margin

    def describe(self) -> str:
        """E.g. ``18:30:00 UTC (Slurm job 42's end time), less a 60 s margin``."""
        clock = datetime.fromtimestamp(self.at, timezone.utc).strftime("%H:%M:%S UTC")
        return f"{clock} ({self.source}), less a {self.margin:.0f} s margin"

    def reached(self) -> DeadlineReached:
        """The exception a job that stopped at this deadline raises."""
        return DeadlineReached(f"stopped at the deadline {self.describe()}; resumable", deadline=self.at)


def slurm_end_time(env: Mapping[str, str] | None = None) -> float | None:
    """The end time (epoch seconds) of the Slurm job this process runs in; ``None`` outside one or if unknown."""
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    text = env.get("SLURM_JOB_END_TIME", "").strip()
    if text.isdigit():
        return float(text)
    squeue = shutil.which("squeue", path=env.get("PATH"))
    if squeue is None:
        log.warning("in Slurm job %s but no squeue on PATH: no deadline from the job's end time", job)
        return None
    try:
        done = subprocess.run(
            [squeue, "-h", "-j", job, "-o", "%e"], capture_output=True, text=True, timeout=20, check=False, env=env
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not ask squeue for the end time of Slurm job %s: %s", job, exc)
        return None
    text = done.stdout.strip()
    try:
        return datetime.fromisoformat(text).timestamp()  # squeue prints local time
    except ValueError:
        log.warning(
            "squeue gave no end time for Slurm job %s (%r%s): no deadline",
            job, text, f", {done.stderr.strip()}" if done.stderr.strip() else "",
        )  # fmt: skip
        return None


def resolve_deadline(options: JobOptions, *, now: float | None = None) -> Deadline | None:
    """The deadline of a job run with ``options`` (``"slurm"`` asks Slurm now), ``None`` if it has none."""
    now = time.time() if now is None else now
    if options.deadline is None:
        return None
    if options.deadline == "slurm":
        at = slurm_end_time()
        if at is None:
            return None
        source = f"Slurm job {os.environ.get('SLURM_JOB_ID')}'s end time"
    else:
        at, source = float(options.deadline), "the job's deadline"
    margin = options.deadline_margin if options.deadline_margin is not None else default_margin(at - now)
    deadline = Deadline(at=at, margin=margin, source=source)
    log.info("deadline %s: stopping at the latest %.0f s from now", deadline.describe(), deadline.stop_at - now)
    return deadline


@contextmanager
def stop_at(deadline: Deadline | None) -> Iterator[None]:
    """Raise ``DeadlineReached`` in the main thread when ``deadline.stop_at`` comes during the block.

    Uses ``SIGALRM`` (main thread only; elsewhere, or without a deadline, a no-op: the
    workers' ``start_by`` still keeps new (phase, run)s from starting too late).
    """
    if deadline is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[bool] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not fired:
            log.warning("the deadline's margin is reached: stopping the job (%s)", deadline.describe())
        fired.append(True)
        # a handler's exception can land in a callback that swallows it (a weakref's, a
        # __del__): then the alarm comes again, until the block is left
        signal.setitimer(signal.ITIMER_REAL, AGAIN_AFTER)
        raise deadline.reached()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, deadline.stop_at - time.time()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
