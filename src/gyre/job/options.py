"""How a job runs, as one frozen value: what ``start_pipeline`` and ``gyre run`` were asked.

:class:`JobOptions` travels from the entry points (``start_pipeline``, the CLI) through the
job's preparation, the driver loop and the adaptive host unchanged; every option has one
meaning, written here. The window's default (``default_window``) comes from the
measurements in docs/scaling.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "MIN_WINDOW",
    "RUNS_PER_THREAD",
    "AdaptiveLimits",
    "JobOptions",
    "ResumePolicy",
    "default_window",
]

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


VERIFY_POLICIES = ("checksum", "stat")
RUN_IDENTITIES = ("stat", "content")


@dataclass(frozen=True)
class ResumePolicy:
    """How much a resumed job trusts what is on disk.

    Parameters
    ----------
    verify
        ``"checksum"`` (default): a recorded artifact is reused only if its bytes still
        hash to the recorded SHA-256. ``"stat"``: an unchanged size and modification time
        suffice (for huge artifacts, where re-reading everything costs too much).
    run_identity
        ``"stat"`` (default): a run file is the same if its name, size and modification
        time are. ``"content"``: its SHA-256 (reads every run file at every start).
    """

    verify: str = "checksum"
    run_identity: str = "stat"

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_POLICIES:
            raise ConfigError(f"verify={self.verify!r} is not one of {', '.join(VERIFY_POLICIES)}")
        if self.run_identity not in RUN_IDENTITIES:
            raise ConfigError(f"run_identity={self.run_identity!r} is not one of {', '.join(RUN_IDENTITIES)}")


@dataclass(frozen=True)
class AdaptiveLimits:
    """How far adaptivity may go: ``max_generations`` below the top level, ``max_children`` in total.

    A request beyond either limit is refused and recorded in the report, never run.

    Raises
    ------
    ConfigError
        A negative or non-integer limit.
    """

    max_generations: int = 3
    max_children: int = 100

    def __post_init__(self) -> None:
        for name in ("max_generations", "max_children"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer (0 disables children), got {value!r}")


@dataclass(frozen=True)
class JobOptions:
    """How one job runs: everything ``start_pipeline`` takes besides the pipeline, its runs and its cluster.

    ``window``
        Runs in flight at once; ``None`` (the default) is ``default_window(worker threads)``.
    ``fuse``
        ``True``: each run's phases in one task; ``False``: one task per (phase, run); ``None``
        (the default): fused once the first phases prove short (``gyre.job.fusion``).
    ``fail_fast``
        Cancel everything not finished at the first failed (phase, run).
    ``force``, ``force_phases``, ``resume``
        Recompute everything; recompute these phases and all after them; how much a resumed
        job trusts what is on disk (:class:`ResumePolicy`).
    ``adaptive``, ``limits``
        The pipeline-level adaptive strategy (called in the driver with each finished run;
        ``None``: the pipeline's own ``adaptive`` attribute, if it has one) and how far
        children may go (:class:`AdaptiveLimits`).
    ``performance_report``
        ``True`` or a path (relative to the workspace): write distributed's performance report.
    ``display``
        Show progress and print the report in the terminal.
    ``runs_to_skip``
        Run numbers left out of the range.
    ``deadline``, ``deadline_margin``
        When the job must be over: epoch seconds (``time.time()``'s scale); ``"slurm"`` (the
        default): the end time of the Slurm job it runs in, if any; ``None``: no deadline. No
        (phase, run) starts that is predicted to end after the deadline less the margin, and
        at that point the job stops as on SIGTERM and raises ``DeadlineReached``. The margin
        (seconds) is by default ``gyre.job.deadline.default_margin`` of the time left at the start.
    ``split``
        Split the big runs of phases that declare a ``gyre.Split`` into parts by event range
        when they would be the job's tail (``gyre.job.splitting``); ``False`` runs every run whole.
    """

    window: int | None = None
    fuse: bool | None = None
    fail_fast: bool = False
    force: bool = False
    force_phases: tuple[str, ...] = ()
    resume: ResumePolicy = field(default_factory=ResumePolicy)
    adaptive: Callable[..., Any] | None = None
    limits: AdaptiveLimits = field(default_factory=AdaptiveLimits)
    performance_report: str | Path | bool | None = None
    display: bool = True
    runs_to_skip: frozenset[int] = frozenset()
    deadline: float | str | None = "slurm"
    deadline_margin: float | None = None
    split: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.deadline, str) and self.deadline != "slurm":
            raise ConfigError(f"deadline must be epoch seconds, 'slurm' or None, got {self.deadline!r}")
        if isinstance(self.deadline, bool):
            raise ConfigError(f"deadline must be epoch seconds, 'slurm' or None, got {self.deadline!r}")
        if self.deadline_margin is not None and not self.deadline_margin >= 0:
            raise ConfigError(f"deadline_margin must be a non-negative number of seconds, got {self.deadline_margin!r}")
        if self.window is not None and (isinstance(self.window, bool) or self.window < 1):
            raise ConfigError(f"window must be a positive number of runs (None: the default), got {self.window!r}")
        if self.fuse not in (None, True, False):
            raise ConfigError(f"fuse must be True, False or None (decide from the first phases), got {self.fuse!r}")
        object.__setattr__(self, "force_phases", tuple(self.force_phases))
        object.__setattr__(self, "runs_to_skip", frozenset(self.runs_to_skip))

    def window_for(self, n_threads: Callable[[], int]) -> int:
        """The runs in flight at once; ``n_threads()`` (the cluster's worker threads) is asked only for the default."""
        return default_window(n_threads()) if self.window is None else self.window
