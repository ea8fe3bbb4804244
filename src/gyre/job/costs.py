"""Learned costs: how long each (phase, run) should take, predicted from the manifest's history.

Every finished (phase, run) is recorded with its start and end time (a split run's record
also with its parts' seconds, which count as its work). :class:`CostModel` turns
those records into a :class:`Prediction` per (phase, run), from the first of:

``"last duration"``
    the (phase, run)'s own last duration under the same configuration (class, version,
    ``config()`` and lineage; the seed does not count: it changes values, not costs);
``"rate per byte"`` / ``"rate per event"``
    a per-phase rate fitted on the phase's other recorded runs (same configuration), times the
    run file's bytes or events, whichever explains those runs better (the smaller spread of
    the log ratio duration / size; two runs are needed to compare, one gives a byte rate);
``"file size"``
    no history for this phase: the run file's bytes, at the median byte rate of the phases
    that have one (``seconds`` is ``None`` when nothing in the workspace has any history).

The driver orders runs by their predicted cost (largest first), the splitting decision
weighs a run's split work by it (``gyre.job.splitting``), the deadline keeps a
(phase, run) from starting when it would end too late, and the display's ETA weighs what is
left by it. ``CostModel.observe`` takes this job's own outcomes in as they arrive, so runs
submitted later are predicted with what the job has learned.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import GyreError
from ..pipeline import Pipeline
from ..result import Status, TaskOutcome, parts_seconds
from ..runs import RunFile, RunSelection, find_runs
from ..workspace.manifest import Manifest, ManifestRecord, config_fingerprint, digest
from .resume import ResumePlan

__all__ = ["PREDICTORS", "CostModel", "Prediction", "computed_phases", "cost_notes", "run_events"]

log = logging.getLogger(__name__)

#: the predictors, most specific first
PREDICTORS = ("last duration", "rate per byte", "rate per event", "file size")
#: at most this many of a phase's recorded runs are opened to count their events for the fit
_FIT_SAMPLE = 200


@dataclass(frozen=True)
class Prediction:
    """The predicted cost of one (phase, run): ``seconds`` (``None``: no time scale known) and how."""

    seconds: float | None
    predictor: str


def run_events(path: Path) -> int | None:
    """The number of events in a run file (the length of its datasets along ``event``), ``None`` if unreadable."""
    from ..io.artifacts import scan_file

    try:
        info = scan_file(path)
    except (OSError, ValueError, KeyError) as exc:
        log.debug("cannot count the events of %s: %s", path, exc)
        return None
    lengths = [v.shape[0] for v in info.variables.values() if v.dims[:1] == ("event",) and v.shape]
    return max(lengths) if lengths else None


def computed_phases(plan: ResumePlan) -> dict[int, list[str]]:
    """Run → the phases a job computes for it, from its resume plan."""
    computed: dict[int, list[str]] = defaultdict(list)
    for decision in plan.decisions.values():
        if decision.action == "compute":
            computed[decision.run].append(decision.phase)
    return dict(computed)


def cost_notes(costs: CostModel, plan: ResumePlan) -> list[str]:
    """The plan's note on how its computed (phase, run)s were predicted (:meth:`CostModel.summary`),
    when history predicted any of them; none otherwise."""
    computed = computed_phases(plan)
    cells = [(phase, run) for run, phases in computed.items() for phase in phases]
    return [costs.summary(cells)] if costs.learned(cells) else []


def _cost_facts(facts: Mapping[str, Any]) -> str:
    """The fingerprint of a phase configuration as far as costs go: everything but the seed."""
    return digest({k: v for k, v in facts.items() if k != "seed"})


def _duration(record: ManifestRecord) -> float | None:
    if record.status != "done" or not record.started or not record.finished:
        return None
    try:
        seconds = (datetime.fromisoformat(record.finished) - datetime.fromisoformat(record.started)).total_seconds()
    except ValueError:
        return None
    if seconds < 0:
        return None
    return seconds + parts_seconds(record.parts)  # a split run's record times only its merge


@dataclass(frozen=True)
class _Rate:
    seconds_per_unit: float
    unit: str  # "byte" or "event"


def _fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(rate, spread) of durations over sizes: the geometric mean ratio and the std of the log ratios."""
    logs = [math.log(d / x) for d, x in points if d > 0 and x > 0]
    if not logs:
        return None
    spread = statistics.pstdev(logs) if len(logs) > 1 else math.inf
    return math.exp(statistics.fmean(logs)), spread


class CostModel:
    """Predicted seconds per (phase, run) of one pipeline over one selection of runs.

    Build it with :meth:`from_manifest`; ask :meth:`predict` per (phase, run),
    :meth:`run_cost` per run, :meth:`largest_first` for an order, :meth:`summary` for the
    plan's note.
    """

    def __init__(
        self,
        phases: Sequence[str],
        runs: Iterable[RunFile],
        *,
        last: Mapping[tuple[str, int], float] | None = None,
        history: Mapping[str, Mapping[int, float]] | None = None,
    ) -> None:
        """``runs``: the run files to predict and those of ``history`` (their sizes and events);
        ``last``: (phase, run) → its last duration under the current configuration;
        ``history``: phase → run → duration of the recorded runs the rates are fitted on."""
        self.phases = list(phases)
        self.runs = {run.run: run for run in runs}
        self._last = dict(last or {})
        self._history: dict[str, dict[int, float]] = {p: dict((history or {}).get(p, {})) for p in self.phases}
        self._events: dict[int, int | None] = {}
        self._rates: dict[str, _Rate | None] = {}
        self._byte_scale: float | None = None
        self._fitted = False

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, pipeline: Pipeline, selection: RunSelection | Sequence[RunFile]
    ) -> CostModel:
        """The model of ``pipeline`` over ``selection``, from the durations ``manifest`` records."""
        runs = selection.found if isinstance(selection, RunSelection) else tuple(selection)
        wanted = {p.name: _cost_facts(config_fingerprint(p, seed=0)[1]) for p in pipeline.phases}
        last: dict[tuple[str, int], float] = {}
        history: dict[str, dict[int, float]] = defaultdict(dict)
        for phase, facts in wanted.items():
            for record in manifest.records(phase):
                seconds = _duration(record)
                if seconds is None or _cost_facts(record.config) != facts:
                    continue
                last[(phase, record.run)] = seconds
                history[phase][record.run] = seconds
        files = list(runs)
        earlier = sorted({run for durations in history.values() for run in durations} - {r.run for r in runs})
        if earlier:  # runs outside this selection still teach the rates: their files' sizes are needed
            with contextlib.suppress(GyreError):  # their files are gone: the rates come from this selection's runs
                files += find_runs(pipeline.trace_path, earlier, pattern=pipeline.run_pattern).found
        return cls([p.name for p in pipeline.phases], files, last=last, history=history)

    def task_done(self, outcome: TaskOutcome) -> None:
        """Learn from an outcome of this job (a computed (phase, run) with its duration): a driver listener."""
        seconds = outcome.work
        if outcome.status != Status.DONE or outcome.lineage or seconds is None:
            return
        if outcome.phase not in self._history:
            return
        self._last[(outcome.phase, outcome.run)] = seconds
        self._history[outcome.phase][outcome.run] = seconds
        self._fitted = False

    def predict(self, phase: str, run: int) -> Prediction:
        """The predicted cost of (``phase``, ``run``) and the predictor that gave it."""
        known = self._last.get((phase, run))
        if known is not None:
            return Prediction(known, "last duration")
        self._fit()
        file = self.runs.get(run)
        rate = self._rates.get(phase)
        if rate is not None and file is not None:
            amount = file.size if rate.unit == "byte" else self._count_events(run)
            if amount is not None:
                return Prediction(rate.seconds_per_unit * amount, f"rate per {rate.unit}")
        size = file.size if file is not None else None
        if size is None or self._byte_scale is None:
            return Prediction(None, "file size")
        return Prediction(self._byte_scale * size, "file size")

    def run_cost(self, run: int, phases: Iterable[str] | None = None) -> float | None:
        """Predicted seconds of ``run`` over ``phases`` (default: all); ``None`` without a time scale."""
        total = 0.0
        for phase in self.phases if phases is None else phases:
            seconds = self.predict(phase, run).seconds
            if seconds is None:
                return None
            total += seconds
        return total

    def largest_first(
        self, runs: Sequence[RunFile], computed: Mapping[int, Sequence[str]] | None = None
    ) -> tuple[RunFile, ...]:
        """``runs`` by predicted cost, largest first (ties by run number).

        ``computed``: run → the phases this job computes for it (default: all); a run whose
        phases are all cached costs nothing. Without any time scale the order is by file
        size, as :meth:`RunSelection.largest_first`.
        """
        costs = {r.run: self.run_cost(r.run, None if computed is None else computed.get(r.run, ())) for r in runs}
        if any(cost is None for cost in costs.values()):
            return tuple(sorted(runs, key=lambda r: (-r.size, r.run)))
        return tuple(sorted(runs, key=lambda r: (-(costs[r.run] or 0.0), r.run)))

    def predictors(self, cells: Iterable[tuple[str, int]]) -> Counter[str]:
        """How many of ``cells`` ((phase, run)s) each predictor predicts."""
        return Counter(self.predict(phase, run).predictor for phase, run in cells)

    def weights(self, cells: Iterable[tuple[str, int]]) -> dict[tuple[str, int], float] | None:
        """(phase, run) → predicted seconds of each of ``cells``, ``None`` if one has no time scale (for an ETA)."""
        weights = {}
        for phase, run in cells:
            seconds = self.predict(phase, run).seconds
            if seconds is None:
                return None
            weights[(phase, run)] = seconds
        return weights

    def predictor(self, cells: Iterable[tuple[str, int]]) -> Callable[[str, int], float] | None:
        """``cost(phase, run) -> seconds`` (the splitting decision's cost callable) when every one of
        ``cells`` has predicted seconds; ``None`` otherwise (the caller then uses its own measure)."""
        if self.weights(cells) is None:
            return None

        def cost(phase: str, run: int) -> float:
            return self.predict(phase, run).seconds or 0.0

        return cost

    def learned(self, cells: Iterable[tuple[str, int]]) -> bool:
        """Whether any of ``cells`` is predicted from history (not from its file size alone)."""
        return any(self.predict(phase, run).predictor != "file size" for phase, run in cells)

    def summary(self, cells: Iterable[tuple[str, int]]) -> str:
        """One line for the plan and the log: which predictors ordered the (phase, run)s to compute."""
        cells = list(cells)
        by_phase: dict[str, Counter[str]] = defaultdict(Counter)
        for phase, run in cells:
            by_phase[phase][self.predict(phase, run).predictor] += 1
        parts = []
        for phase in self.phases:
            counts = by_phase.get(phase)
            if counts:
                used = ", ".join(f"{n} by {name}" for name in PREDICTORS if (n := counts.get(name)))
                parts.append(f"{phase!r} {used}")
        if not parts:
            return "costs: nothing to compute"
        return "costs predicted per (phase, run): " + "; ".join(parts)

    # -- fitting ---------------------------------------------------------------------------

    def _count_events(self, run: int) -> int | None:
        if run not in self._events:
            file = self.runs.get(run)
            self._events[run] = run_events(file.path) if file is not None else None
        return self._events[run]

    def _fit(self) -> None:
        if self._fitted:
            return
        self._fitted = True
        byte_rates = []
        for phase in self.phases:
            self._rates[phase] = rate = self._fit_phase(phase)
            if rate is not None and rate.unit == "byte":
                byte_rates.append(rate.seconds_per_unit)
            elif rate is not None:
                by_byte = _fit([(d, self.runs[r].size) for r, d in self._history[phase].items() if r in self.runs])
                if by_byte is not None:
                    byte_rates.append(by_byte[0])
        self._byte_scale = statistics.median(byte_rates) if byte_rates else None

    def _fit_phase(self, phase: str) -> _Rate | None:
        known = sorted((run, d) for run, d in self._history[phase].items() if run in self.runs)
        if not known:
            return None
        step = max(1, len(known) // _FIT_SAMPLE)
        sample = known[::step]
        by_byte = _fit([(d, self.runs[run].size) for run, d in sample])
        if by_byte is None:
            return None
        if len(sample) < 2:
            return _Rate(by_byte[0], "byte")
        events = [(d, self._count_events(run)) for run, d in sample]
        by_event = _fit([(d, float(n)) for d, n in events if n]) if all(n for _, n in events) else None
        if by_event is not None and by_event[1] < by_byte[1]:
            return _Rate(by_event[0], "event")
        return _Rate(by_byte[0], "byte")
