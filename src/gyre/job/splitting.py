"""Which runs to split by event range, into how many parts, and which parts a resumed job reuses.

A run is split when the work of its split phases (phases that declare a ``gyre.Split``)
would be a tail: more than ``1 / (PARTS_PER_THREAD · worker threads)`` of the job's work
left to compute. It is cut into ``ceil(its split work / that bound)`` parts, so no part is
bigger than that bound, on fixed event blocks (the least common multiple of its split
phases' ``events_per_block``): the same run, sizes, options and cluster size give the same
parts, and since a phase's random draws come per block (``ctx.event_blocks()``), the merged
artifact is the same however it was split. A resumed job keeps the partition it recorded
for a run, whatever the cluster now, and reuses the parts it finished.

The work of a (phase, run) comes from a cost predictor, any callable
``cost(phase_name, run_number) -> float`` (seconds or any relative unit, the same for every
phase and run): a job passes its learned seconds (``gyre.job.costs``: a run whose events
cost more than others' is split sooner) when every (phase, run) it computes has them; by
default, and on a first job, the run's event count (:func:`event_cost`), or its file size
if some run's events cannot be counted. Either way the parts depend on what is known before
the job starts (run files, the manifest's history, options, cluster size), never on this
job's timing, and the plan (``gyre.plan``) shows the same parts the job then uses.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..phase import Split
from ..result import PhaseResult, Status, TaskOutcome
from ..workspace.manifest import verify_artifacts
from ..workspace.parts import PartJournal
from .chains import RunChain
from .options import ResumePolicy
from .resume import ResumePlan

__all__ = [
    "PARTS_PER_THREAD",
    "SplitJob",
    "WorkCost",
    "count_events",
    "event_cost",
    "part_key",
    "split_chains",
    "with_run_events",
]

log = logging.getLogger(__name__)

#: a run is split when its split work exceeds 1 / (this × worker threads) of the job's work:
#: with parts no bigger than that, largest-first scheduling ends within about that share
#: of the ideal (W / threads)
PARTS_PER_THREAD = 4

#: the resume reasons under which a (phase, run)'s recorded parts may be reused as they are
_REUSABLE = ("not done before", "the last attempt failed")


#: the work of one (phase, run): ``cost(phase, run)``, in seconds or any unit shared by every phase and run
WorkCost = Callable[[str, int], float]


def part_key(key: str, index: int, count: int) -> str:
    """The task key of part ``index`` of ``count`` of the (phase, run) whose key is ``key``."""
    return f"{key}-part{index}of{count}"


@dataclass(frozen=True)
class SplitJob:
    """The chains with their parts decided, the parts a resumed job reuses, and what the plan says."""

    chains: list[RunChain]
    #: part task key → its ``cached`` outcome (finished by an earlier, interrupted job)
    cached: dict[str, TaskOutcome] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def count_events(chains: Sequence[RunChain], *, threads: int = 8) -> dict[int, int]:
    """Run → its event count (the first axis of its split phases' dataset), for runs with a split phase.

    A run whose file lacks the dataset is left out (it is not split; its phase will say why).
    """

    def count(chain: RunChain) -> tuple[int, int | None]:
        import h5py

        run, path = chain.run.run, chain.run.path
        datasets = {spec.phase.split.dataset for spec in chain.tasks if spec.phase.split is not None}
        lengths = set()
        try:
            with h5py.File(path, "r") as handle:
                for name in datasets:
                    node = handle.get(name)
                    if not isinstance(node, h5py.Dataset) or node.ndim == 0:
                        log.warning("run %d: no dataset %r to count events in %s: not split", run, name, path)
                        return run, None
                    lengths.add(int(node.shape[0]))
        except OSError as exc:
            log.warning("run %d: cannot count its events in %s (%s): not split", run, path, exc)
            return run, None
        if len(lengths) != 1:
            log.warning("run %d: its split datasets %s differ in length %s: not split", run, sorted(datasets), lengths)
            return run, None
        return run, lengths.pop()

    wanted = [chain for chain in chains if any(spec.phase.split is not None for spec in chain.tasks)]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        counted = list(pool.map(count, wanted))
    return {run: n for run, n in counted if n is not None}


def event_cost(events: Mapping[int, int], sizes: Mapping[int, int]) -> WorkCost:
    """The default predictor: a (phase, run)'s work is its run's event count, or its file size
    if some run's events are unknown (one unit for the whole job)."""
    by_events = bool(events) and all(run in events for run in sizes)
    weights = dict(events) if by_events else dict(sizes)

    def cost(phase: str, run: int) -> float:
        return float(weights.get(run, 0))

    return cost


def split_chains(
    chains: Sequence[RunChain],
    plan: ResumePlan,
    *,
    n_threads: int,
    cost: WorkCost | None = None,
    journal: PartJournal | None = None,
    policy: ResumePolicy | None = None,
    enabled: bool = True,
    parts_per_thread: int = PARTS_PER_THREAD,
) -> SplitJob:
    """Decide the parts of every run whose split phases are computed; reuse recorded parts.

    Every chain with a computed split phase gets its event count (its split specs see the
    whole run as ``ctx.events``); those whose split work is a tail get ``parts``.
    ``enabled=False`` splits nothing (but still gives split phases their events).
    """
    policy = policy or ResumePolicy()
    splitting = [c for c in chains if any(_computes_split(c, i, plan) for i in range(len(c.tasks)))]
    if not splitting:
        return SplitJob(list(chains))
    events = count_events(chains)
    busy = [c for c in chains if any(plan.decision(s.phase.name, s.run).action == "compute" for s in c.tasks)]
    cost = cost or event_cost(events, {c.run.run: c.run.size for c in busy})
    total = sum(
        cost(spec.phase.name, spec.run)
        for chain in chains
        for spec in chain.tasks
        if plan.decision(spec.phase.name, spec.run).action == "compute"
    )
    bound = total / (max(1, n_threads) * max(1, parts_per_thread))
    names = {spec.phase.name for chain in splitting for spec in chain.tasks if spec.phase.split is not None}
    records = {name: journal.parts(name) for name in names} if journal is not None else {}
    out: dict[int, RunChain] = {}
    cached: dict[str, TaskOutcome] = {}
    notes = []
    for chain in splitting:
        run = chain.run.run
        if run not in events:
            continue
        n_events = events[run]
        indices = [i for i in range(len(chain.tasks)) if _computes_split(chain, i, plan)]
        block = math.lcm(*(_split(chain, i).events_per_block for i in indices))
        grid = Split(dataset=_split(chain, indices[0]).dataset, events_per_block=block)
        work = sum(cost(chain.tasks[i].phase.name, run) for i in indices)
        count = _recorded_count(chain, indices, plan, records) if enabled else 1
        if count is None:
            count = max(1, math.ceil(work / bound)) if enabled and n_threads > 1 and 0 < bound < work else 1
        parts = grid.parts(n_events, count) if count > 1 else ()
        whole = range(n_events)
        tasks = tuple(dataclasses.replace(s, events=whole) if i in indices else s for i, s in enumerate(chain.tasks))
        split = frozenset(indices) if parts else frozenset()
        out[run] = dataclasses.replace(chain, tasks=tasks, parts=parts, split=split)
        if parts:
            notes.append(f"run {run}: {len(parts)} parts of about {len(parts[0])} events ({n_events} in all)")
            cached.update(_reused_parts(out[run], indices, plan, records, policy))
    if notes:
        log.info("splitting %d run(s) by event range: %s", len(notes), "; ".join(notes))
    if cached:
        log.info("resume: %d part(s) of split runs reused", len(cached))
    return SplitJob([out.get(c.run.run, c) for c in chains], cached, tuple(notes))


def with_run_events(chains: Sequence[RunChain]) -> list[RunChain]:
    """The chains with their split phases given the whole run's events (``ctx.events``), none split.

    For chains that are never split (adaptive children): their split phases see the run's
    events and draw per block as in the job that made their parents.
    """
    events = count_events(chains)
    out = []
    for chain in chains:
        n_events = events.get(chain.run.run)
        if n_events is None:
            out.append(chain)
            continue
        whole = range(n_events)
        tasks = tuple(dataclasses.replace(s, events=whole) if s.phase.split is not None else s for s in chain.tasks)
        out.append(dataclasses.replace(chain, tasks=tasks))
    return out


def _split(chain: RunChain, index: int) -> Split:
    split = chain.tasks[index].phase.split
    assert split is not None
    return split


def _computes_split(chain: RunChain, index: int, plan: ResumePlan) -> bool:
    spec = chain.tasks[index]
    if spec.phase.split is None or not spec.compute:
        return False
    return plan.decision(spec.phase.name, spec.run).action == "compute"


def _recorded_count(
    chain: RunChain,
    indices: Sequence[int],
    plan: ResumePlan,
    records: Mapping[str, Mapping[tuple[int, int, int], tuple[object, range]]],
) -> int | None:
    """The part count an earlier job used for this run's split phases under the same fingerprint, if any."""
    run = chain.run.run
    for index in indices:
        name = chain.tasks[index].phase.name
        fingerprint = plan.decision(name, run).fingerprint
        for (r, _, count), (record, _) in records.get(name, {}).items():
            if r == run and getattr(record, "fingerprint", None) == fingerprint:
                return count
    return None


def _reused_parts(
    chain: RunChain,
    indices: Sequence[int],
    plan: ResumePlan,
    records: Mapping[str, Mapping[tuple[int, int, int], tuple[object, range]]],
    policy: ResumePolicy,
) -> dict[str, TaskOutcome]:
    """The recorded parts this run may reuse: same fingerprint and partition, artifacts intact,
    and their upstream part reused too (or their upstream not recomputed)."""
    from ..workspace.manifest import ManifestRecord

    run, count = chain.run.run, len(chain.parts)
    reused: dict[str, TaskOutcome] = {}
    previous: set[int] = set()
    for index in indices:
        spec, key = chain.tasks[index], chain.keys[index]
        decision = plan.decision(spec.phase.name, run)
        if decision.reason in _REUSABLE:
            eligible = set(range(1, count + 1))
        elif index - 1 in indices and decision.reason.startswith("upstream phase"):
            eligible = previous
        else:
            eligible = set()
        previous = set()
        for number in sorted(eligible):
            found = records.get(spec.phase.name, {}).get((run, number, count))
            if found is None:
                continue
            record, events = found
            assert isinstance(record, ManifestRecord)
            same = record.fingerprint == decision.fingerprint and events == chain.parts[number - 1]
            if not same or record.status != "done":
                continue
            if verify_artifacts(record, plan.workspace, policy=policy.verify) is not None:
                continue
            previous.add(number)
            reused[part_key(key, number, count)] = TaskOutcome(
                phase=spec.phase.name,
                run=run,
                status=Status.CACHED,
                result=PhaseResult(record.artifact_paths(plan.workspace), run=run, metadata=record.metadata),
                reason="part finished by an earlier job",
                part=(number, count),
                events=events,
            )
    return reused
