"""How many runs the driver keeps in flight by default (see docs/scaling.md for the measurements)."""

from __future__ import annotations

__all__ = ["RUNS_PER_THREAD", "default_window"]

#: runs in flight per worker thread: enough queued work that no worker waits for the driver
#: between runs, few enough that the scheduler holds a few hundred tasks, not the whole job
RUNS_PER_THREAD = 8
#: never fewer in flight than this, so a small cluster still overlaps result fetching and submission
MIN_WINDOW = 16


def default_window(n_threads: int) -> int:
    """The default ``window``: ``RUNS_PER_THREAD`` runs per worker thread, at least ``MIN_WINDOW``."""
    return max(MIN_WINDOW, RUNS_PER_THREAD * max(1, n_threads))
