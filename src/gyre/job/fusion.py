"""Fused run chains: a run's phases in one task, one outcome per phase.

On tiny work the cost of a (phase, run) is dask's, not the phase's: a scheduler
transition, a message to a worker and a result fetch per task. Fusing a run's chain
into one task pays that once per run instead of once per phase. The statuses and the
report stay per (phase, run): the fused task returns the outcome of every phase, a
failing phase makes the later ones ``skipped`` exactly as separate tasks would.

What is given up: the dashboard groups fused tasks under ``<phase>+<phase>+...`` rather
than per phase, the terminal bars of a run's phases advance together when the run ends,
and a worker lost mid-run repeats the whole chain rather than one phase.

By default (``fuse=None``) the driver decides from what it sees (``FusionPolicy``): runs
start as one task per (phase, run); once ``AUTO_FUSE_SAMPLE`` phases have finished, if
their median duration is under ``auto_fuse_below(worker threads)`` the runs submitted from
then on are fused. That bound is ``AUTO_FUSE_BELOW`` (dask's own advice is tasks of at least
100 ms: below that its per-task cost is a sizable share) on small clusters, and grows with
the cluster: W threads finishing unfused tasks of d seconds keep the scheduler busy
W · c / d of the time (c ≈ 1.2 ms of scheduler CPU per gyre task, docs/scaling.md), so gyre
fuses when that would exceed 40 %. ``fuse=True`` fuses every run, ``fuse=False`` none.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence

from ..result import PhaseResult, Status, TaskOutcome
from .worker import TaskSpec, execute_phase

__all__ = ["AUTO_FUSE_BELOW", "AUTO_FUSE_SAMPLE", "FusionPolicy", "auto_fuse_below", "execute_chain", "fused_key"]

log = logging.getLogger(__name__)

#: median phase duration (seconds) under which runs are fused automatically
AUTO_FUSE_BELOW = 0.1
#: finished phases the automatic decision waits for
AUTO_FUSE_SAMPLE = 32
#: scheduler CPU seconds per unfused gyre task (measured, docs/scaling.md) and the share of
#: the scheduler's time those tasks may take before fusing pays
_SCHEDULER_SECONDS_PER_TASK = 1.2e-3
_SCHEDULER_SHARE = 0.4


def auto_fuse_below(n_threads: int) -> float:
    """The median phase duration (s) under which runs are fused on ``n_threads`` worker threads."""
    return max(AUTO_FUSE_BELOW, max(1, n_threads) * _SCHEDULER_SECONDS_PER_TASK / _SCHEDULER_SHARE)


def fused_key(phases: Sequence[str], token: str, run: int) -> str:
    """The dask key of a fused chain: ``<phase>+<phase>+...-<token>-<run>``."""
    return f"{'+'.join(phases)}-{token}-{run}"


def execute_chain(specs: Sequence[TaskSpec], payload: PhaseResult) -> tuple[TaskOutcome, ...]:
    """Run a run's phases one after the other in this task; one outcome per phase, in order.

    Never raises unless the specs ask for it (``raise_errors``), like ``execute_phase``.
    """
    outcomes: list[TaskOutcome] = []
    upstream: TaskOutcome | PhaseResult = payload
    for spec in specs:
        upstream = execute_phase(spec, upstream)
        outcomes.append(upstream)
    return tuple(outcomes)


class FusionPolicy:
    """Whether the driver fuses the runs it submits next: always, never, or once phases prove short.

    ``fuse=None`` watches the durations of the first ``sample`` computed phases and switches
    to fused runs for good if their median is under ``below`` seconds; otherwise it stops
    watching and keeps one task per (phase, run).
    """

    def __init__(self, fuse: bool | None, *, below: float = AUTO_FUSE_BELOW, sample: int = AUTO_FUSE_SAMPLE) -> None:
        self.deciding = fuse is None
        self.fusing = bool(fuse)
        self.below = below
        self.sample = max(1, sample)
        self._durations: list[float] = []

    @classmethod
    def for_cluster(cls, fuse: bool | None, n_threads: Callable[[], int]) -> FusionPolicy:
        """The policy for ``fuse``; ``n_threads()`` (the cluster's worker threads) is asked only when deciding."""
        if fuse is None:
            return cls(None, below=auto_fuse_below(n_threads()))
        return cls(fuse)

    def observe(self, outcome: TaskOutcome) -> None:
        """Take one outcome of an unfused (phase, run) into account."""
        if not self.deciding or outcome.status != Status.DONE or outcome.duration is None:
            return
        self._durations.append(outcome.duration)
        if len(self._durations) < self.sample:
            return
        self.deciding = False
        median = statistics.median(self._durations)
        if median < self.below:
            self.fusing = True
            log.info(
                "phases take %.1f ms (median of %d): each run's phases go in one task from now on "
                "(fuse=False keeps them apart)",
                1e3 * median,
                len(self._durations),
            )
