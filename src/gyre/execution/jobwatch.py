"""Replacing worker jobs that ended: runs in the driver, on the event loop of its jobqueue cluster.

dask-jobqueue submits one batch job per entry of its cluster's worker spec and forgets
about a job once submitted: a job that ends on its own (its walltime, its workers'
``--lifetime``, an ``scancel``, a failed node) keeps its place in the spec, so a fixed-size
cluster shrinks for good and an adaptive one counts it as "not yet arrived" and never asks
for another. :class:`JobWatch` looks every ``interval`` seconds: a job whose workers had
joined the scheduler and are all gone now is taken out of the spec (and cancelled, should
its batch job linger), and a fixed-size cluster gets a new job in its place; an adaptive
one asks for what it needs at its next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from .slurmqueue import ended_in_queue

__all__ = ["EndedJob", "JobWatch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndedJob:
    """A worker job whose workers all left: its name in the cluster, and its batch job id."""

    name: str
    job_id: str | None


class JobWatch:
    """Keeps a jobqueue cluster at its size as worker jobs end (see the module docstring).

    ``target`` is the number of jobs to keep (a fixed size), ``None`` for an adaptive cluster;
    ``joined`` gives the names of every worker that ever joined the scheduler (a worker may
    come and go between two looks). Every ``queue_every`` looks, the jobs whose workers never
    joined are looked up in the queue: one that ended before its worker started (cancelled
    while pending, a failing job script) is replaced too, up to ``max_failed_starts`` times.
    """

    def __init__(
        self,
        cluster: Any,
        *,
        target: int | None,
        joined: Callable[[], Collection[str]],
        interval: float = 1.0,
        queue_every: int = 5,
        max_failed_starts: int = 3,
    ) -> None:
        self.cluster = cluster
        self.target = target
        self.joined = joined
        self.interval = interval
        self.queue_every = queue_every
        self.max_failed_starts = max_failed_starts
        #: the batch job id of every job the cluster started, by the name of its workers
        self.job_ids: dict[str, str] = {}
        #: the jobs that ended while the cluster ran, in order
        self.ended: list[EndedJob] = []
        self.failed_starts = 0
        self._looks = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start looking, on the cluster's event loop."""
        self.cluster.loop.add_callback(self._begin)

    def stop(self) -> None:
        """Stop looking (before the cluster closes: its jobs then end on purpose)."""
        self.cluster.sync(self._end)

    async def _begin(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    async def _end(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except (OSError, RuntimeError, ValueError) as exc:  # one look; the next may succeed
                log.warning("could not check the worker jobs: %s", exc)

    async def check(self) -> None:
        """One look: forget the jobs that ended and, at a fixed size, submit their replacements."""
        from distributed.core import Status

        cluster = self.cluster
        if cluster.status != Status.running:
            return
        self._looks += 1
        for name, job in list(cluster.workers.items()):
            if getattr(job, "job_id", None):
                self.job_ids[str(name)] = str(job.job_id)
        observed = {str(name) for name in cluster.observed}
        joined = {str(name) for name in self.joined()}
        ended, waiting = [], []
        for name, spec in list(cluster.worker_spec.items()):
            workers = _worker_names(str(name), spec)
            if workers & observed:
                continue
            if workers & joined:
                ended.append(name)
            elif str(name) in self.job_ids:
                waiting.append(name)
        if waiting and self._looks % self.queue_every == 0:
            gone = await ended_in_queue([self.job_ids[str(name)] for name in waiting])
            failed = [name for name in waiting if self.job_ids[str(name)] in gone]
            self.failed_starts += len(failed)
            if failed and self.failed_starts > self.max_failed_starts:
                log.error(
                    "%d worker jobs ended before their worker joined (last: %s): no more replacements; "
                    "see their output in the log directory",
                    self.failed_starts,
                    ", ".join(self.job_ids[str(name)] for name in failed),
                )
                for name in failed:
                    del cluster.worker_spec[name]
                    cluster.workers.pop(name, None)
                failed = []
            ended += failed
        if ended:
            await self._replace(ended)

    async def _replace(self, ended: list[Any]) -> None:
        cluster = self.cluster
        for name in ended:
            del cluster.worker_spec[name]
            cluster.workers.pop(name, None)  # its batch job ends by itself (the driver cancels all at the end)
            self.ended.append(EndedJob(str(name), self.job_ids.get(str(name))))
            log.warning(
                "worker job %s (%s) has ended%s",
                self.job_ids.get(str(name), "?"),
                name,
                ": submitting a new one" if self.target is not None else "",
            )
        cluster._i += 1  # the next name is one no job had: a reused name would meet its old job's timers
        if self.target is not None:
            while len(cluster.worker_spec) < self.target:
                cluster.worker_spec.update(_new_spec(cluster))
        await cluster._correct_state()


def _worker_names(name: str, spec: dict[str, Any]) -> set[str]:
    """The names of the workers one job starts (several when it runs several worker processes)."""
    if "group" in spec:
        return {name + suffix for suffix in spec["group"]}
    return {name}


def _new_spec(cluster: Any) -> dict[str, Any]:
    """A spec entry under a name no job of the cluster had yet (names only grow)."""
    while (
        cluster._new_worker_name(cluster._i) in cluster.worker_spec
        or cluster._new_worker_name(cluster._i) in cluster.workers
    ):
        cluster._i += 1
    return {cluster._new_worker_name(cluster._i): cluster.new_spec}
