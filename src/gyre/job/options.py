"""How many runs the driver keeps in flight by default (see docs/scaling.md for the measurements)."""

from __future__ import annotations

__all__ = ["MIN_WINDOW", "RUNS_PER_THREAD", "default_window"]

#: runs in flight per worker thread: enough queued work that no worker waits for the driver
#: between runs, few enough that the scheduler holds a few hundred tasks, not the whole job
RUNS_PER_THREAD = 8
#: never fewer in flight than this: on a small cluster, more runs in flight means bigger batches
#: per driver round trip (on 2 workers, 256 runs cost 30 % less CPU per task than 16, for ~5 MiB
#: more in the scheduler; see docs/scaling.md)
MIN_WINDOW = 256


def default_window(n_threads: int) -> int:
    """The default ``window``: ``RUNS_PER_THREAD`` runs per worker thread, at least ``MIN_WINDOW``."""
    return max(MIN_WINDOW, RUNS_PER_THREAD * max(1, n_threads))
