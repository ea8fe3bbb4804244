"""A pipeline as dask.delayed objects: one per run, to compute on any dask scheduler or fold into a bigger graph.

``to_delayed`` prepares the job as ``start_pipeline`` does (schemas, assets, run files,
seed), compiles the same run chains (``gyre.job.chains``) and wraps each (phase, run)'s
``execute_phase`` in a ``dask.delayed`` call keyed ``<phase>-<token>-<run>``, the key the
driver gives it. What the driver adds around the graph — the window, fusion, resume from
the manifest, the display and the report — is left to the caller's scheduler and code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..job.chains import compile_chains
from ..job.logs import driver_log
from ..job.options import JobOptions
from ..job.prepare import prepare_job
from ..job.splitting import with_run_events
from ..job.worker import execute_phase
from ..pipeline import Pipeline
from ..result import PhaseResult, Status, TaskOutcome
from ..workspace.lock import WorkspaceLock

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["RunOutcome", "run_key", "to_delayed"]


@dataclass(frozen=True)
class RunOutcome:
    """What became of one run's chain of phases: the value of a run's delayed object from :func:`to_delayed`.

    ``outcomes`` holds one :class:`~gyre.TaskOutcome` per phase, in phase order, with the
    statuses ``start_pipeline`` reports (``done``, ``cached`` for an inactive phase,
    ``failed``, ``skipped`` after a failure).
    """

    run: int
    outcomes: tuple[TaskOutcome, ...]

    @property
    def ok(self) -> bool:
        """Whether every phase of the run completed (done or cached)."""
        return all(o.ok for o in self.outcomes)

    @property
    def result(self) -> PhaseResult | None:
        """The last phase's result (its artifacts), ``None`` if the run did not get there."""
        last = self.outcomes[-1] if self.outcomes else None
        return last.result if last is not None and last.ok else None

    def outcome(self, phase: str) -> TaskOutcome:
        """The outcome of one phase of this run."""
        for outcome in self.outcomes:
            if outcome.phase == phase:
                return outcome
        raise KeyError(f"run {self.run} has no phase {phase!r}; its phases are {[o.phase for o in self.outcomes]}")

    def statuses(self) -> dict[str, Status]:
        """Phase → status of this run."""
        return {o.phase: o.status for o in self.outcomes}


def run_key(token: str, run: int) -> str:
    """The dask key of a run's :class:`RunOutcome` in :func:`to_delayed`'s graph: ``gyre-run-<token>-<run>``."""
    return f"gyre-run-{token}-{run}"


def to_delayed(
    pipeline: Pipeline,
    run_min: int,
    run_max: int,
    *,
    runs_to_skip: Iterable[int] = (),
) -> dict[int, Delayed]:
    """One ``dask.delayed`` object per run of ``run_min..run_max`` (inclusive), computing to its :class:`RunOutcome`.

    The graph holds one task per (phase, run), keyed ``<phase>-<token>-<run>`` and chained
    in phase order, then one task per run (``gyre-run-<token>-<run>``) that gathers the
    run's outcomes. Each run's tasks carry the priority ``start_pipeline`` gives them (a
    ``dask.annotate`` that the distributed scheduler honours): the largest runs start first.
    Compute it with ``dask.compute`` on any scheduler (``"sync"``, ``"threads"``,
    ``"processes"``, a distributed ``Client``), pass the objects to your own delayed
    functions (an aggregation over every run becomes one graph), or draw it with
    ``dask.visualize``. The artifacts and statuses are those ``start_pipeline`` gives.

    Done here, at once, like ``start_pipeline``: validation, assets, run discovery (runs
    without a file are left out and logged), the workspace seed; holding the workspace lock
    only for these. Not done: no window (the scheduler holds every task of the graph),
    no fusion, no splitting of big runs, no resume — every active phase is computed, no manifest record is written
    (so a later ``start_pipeline`` recomputes them), no workspace lock while computing, no
    display, report, worker log files or adaptive children (a failure's traceback is in its
    outcome); phases' shared data stays loaded in each worker process until it exits.
    Returns a dict, run → delayed object, in run order.
    """
    from dask.base import annotate
    from dask.delayed import delayed

    pipeline.create_workspace()
    with driver_log(pipeline.workspace_path), WorkspaceLock(pipeline.workspace_path):
        job = prepare_job(pipeline, run_min, run_max, JobOptions(runs_to_skip=frozenset(runs_to_skip)))
    # phases that declare a Split see their run's whole event range, drawn per block as in a job
    chains = with_run_events(compile_chains(pipeline, job.selection, seed=job.seed, token=job.token))
    phase_task = delayed(execute_phase, pure=True)
    gather = delayed(_gather, pure=True)
    runs: dict[int, Delayed] = {}
    for chain in sorted(chains, key=lambda c: c.run.run):
        upstream: object = chain.payload
        tasks = []
        with annotate(priority=chain.priority):  # largest run first, as the driver submits them
            for spec, key in zip(chain.tasks, chain.keys):
                upstream = phase_task(spec, upstream, dask_key_name=key)
                tasks.append(upstream)
            runs[chain.run.run] = gather(chain.run.run, tasks, dask_key_name=run_key(job.token, chain.run.run))
    return runs


def _gather(run: int, outcomes: list[TaskOutcome]) -> RunOutcome:
    return RunOutcome(run=run, outcomes=tuple(outcomes))
