"""PipelineReport: the run × phase outcome of a job, its file in the workspace and its printout."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..adaptive.lineage import ChildSummary, lineage_summary, tree_order
from ..result import STATUSES, Status, TaskOutcome, group_failures
from ..runs import runs_phrase
from ..watch.failures import failure_line
from ..workspace.atomic import atomic_path
from ..workspace.layout import report_path

__all__ = ["REPORT_FORMAT", "PipelineReport", "render_report"]

REPORT_FORMAT = "gyre-report/1"


@dataclass(frozen=True)
class PipelineReport:
    """What became of every (phase, run) of a job: status, duration, error; returned by ``start_pipeline``.

    ``ok`` is true only if every requested run completed every phase. The same content
    is written to ``<workspace>/report.json`` (``to_dict`` gives it as plain data).
    """

    pipeline: str
    workspace: Path
    seed: int
    execution: str
    phases: tuple[str, ...]
    runs: tuple[int, ...]
    missing_runs: tuple[int, ...]
    skipped_runs: tuple[int, ...]
    outcomes: tuple[TaskOutcome, ...]
    started: datetime
    finished: datetime
    dashboard_link: str | None = None
    interrupted: bool = False
    notes: tuple[str, ...] = ()
    children: tuple[ChildSummary, ...] = ()
    child_outcomes: tuple[TaskOutcome, ...] = ()
    _index: dict[tuple[str, int], TaskOutcome] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({(o.phase, o.run): o for o in self.outcomes})

    @property
    def ok(self) -> bool:
        """Whether every requested run completed every phase (done or cached)."""
        return not self.interrupted and all(o.ok for o in self.outcomes)

    @property
    def wall_seconds(self) -> float:
        """Seconds from the start of the job to its end."""
        return (self.finished - self.started).total_seconds()

    @property
    def failed_runs(self) -> list[int]:
        """Runs with a failed phase, in run order."""
        return sorted({o.run for o in self.outcomes if o.status == Status.FAILED})

    def outcome(self, phase: str, run: int) -> TaskOutcome:
        """The outcome of one (phase, run)."""
        return self._index[(phase, run)]

    def status(self, phase: str, run: int) -> str:
        """The status of one (phase, run), ``"missing"`` for a run without a file."""
        if run in self.missing_runs:
            return "missing"
        return self._index[(phase, run)].status

    def failures(self) -> list[TaskOutcome]:
        """The failed (phase, run) outcomes, in run order."""
        return sorted((o for o in self.outcomes if o.status == Status.FAILED), key=lambda o: (o.run, o.phase))

    def counts(self) -> dict[str, dict[str, int]]:
        """Per phase, how many runs ended in each status (missing runs included)."""
        table: dict[str, Counter[str]] = {phase: Counter() for phase in self.phases}
        for outcome in self.outcomes:
            if outcome.phase in table:
                table[outcome.phase][outcome.status] += 1
        for phase in self.phases:
            if self.missing_runs:
                table[phase]["missing"] += len(self.missing_runs)
        return {phase: {s: table[phase][s] for s in STATUSES} for phase in self.phases}

    def summary(self) -> str:
        """One line: how many runs succeeded, failed, are missing, and the wall time."""
        failed = len(self.failed_runs)
        good = len(self.runs) - len({o.run for o in self.outcomes if not o.ok})
        text = f"{self.pipeline}: {good}/{len(self.runs)} runs complete"
        if failed:
            text += f", {failed} failed ({runs_phrase(self.failed_runs)})"
        if self.missing_runs:
            text += f", {len(self.missing_runs)} missing"
        if self.interrupted:
            text += ", INTERRUPTED"
        if self.children:
            text += f", {lineage_summary(self.children)}"
        return text + f" in {self.wall_seconds:.1f} s"

    def records(self) -> Iterator[dict[str, Any]]:
        """One plain-data record per (phase, run), missing runs included."""
        for outcome in sorted(self.outcomes, key=lambda o: (o.run, self._phase_index(o.phase))):
            yield _outcome_record(outcome)
        for run in self.missing_runs:
            for phase in self.phases:
                yield {
                    "phase": phase,
                    "run": run,
                    "status": "missing",
                    "duration": None,
                    "error": "no run file",
                    "error_type": None,
                    "traceback": None,
                    "artifacts": {},
                    "metadata": {},
                    "worker": None,
                    "started": None,
                    "finished": None,
                    "lineage": [],
                    "parts": [],
                }

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-able data (the content of ``report.json``)."""
        return {key: list(value) if isinstance(value, Iterator) else value for key, value in self._fields().items()}

    def _fields(self) -> dict[str, Any]:
        """The report's fields; the long lists of records as iterators, made as they are read."""
        return {
            "format": REPORT_FORMAT,
            "pipeline": self.pipeline,
            "workspace": str(self.workspace),
            "seed": self.seed,
            "execution": self.execution,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "wall_seconds": self.wall_seconds,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "dashboard_link": self.dashboard_link,
            "summary": self.summary(),
            "notes": list(self.notes),
            "phases": list(self.phases),
            "requested_runs": sorted(self.runs),
            "missing_runs": list(self.missing_runs),
            "skipped_runs": list(self.skipped_runs),
            "counts": self.counts(),
            "records": self.records(),
            "children": [child.to_dict() for child in tree_order(self.children)],
            "child_records": (_outcome_record(o) for o in sorted(self.child_outcomes, key=_lineage_key)),
        }

    def write(self, path: Path | None = None) -> Path:
        """Write the report as JSON (atomically), by default to ``<workspace>/report.json``."""
        target = Path(path) if path is not None else report_path(self.workspace)
        with atomic_path(target) as temporary, temporary.open("w") as handle:
            # streamed, a record per line: neither the records nor the text are held whole
            for index, (key, value) in enumerate(self._fields().items()):
                handle.write(("," if index else "{") + f"\n {json.dumps(key)}: ")
                if isinstance(value, Iterator):
                    handle.write("[")
                    for number, record in enumerate(value):
                        handle.write(("," if number else "") + "\n  " + json.dumps(record))
                    handle.write("\n ]")
                else:
                    handle.write(json.dumps(value, indent=1).replace("\n", "\n "))
            handle.write("\n}\n")
        return target

    def __repr__(self) -> str:
        """One line: ``<PipelineReport 'name': 12 runs × 3 phases, 34 done, 1 failed (run 7), report.json at …>``."""
        from .notebook import report_repr

        return report_repr(self)

    def _repr_html_(self) -> str:
        """The report in a notebook cell: summary, counts, failures grouped, a compact run × phase grid."""
        from .notebook import report_html

        return report_html(self)

    def render(self, *, max_runs: int = 40) -> str:
        """The report as text: counts per phase, failures, and a run × phase grid for small jobs."""
        return render_report(self, max_runs=max_runs)

    def _phase_index(self, phase: str) -> int:
        return self.phases.index(phase) if phase in self.phases else len(self.phases)


def _lineage_key(outcome: TaskOutcome) -> tuple[tuple[str, ...], int, float]:
    return (outcome.lineage, outcome.run, outcome.started or 0.0)


def _outcome_record(outcome: TaskOutcome) -> dict[str, Any]:
    """One (phase, run) as a plain record; ``lineage`` says which child it belongs to (empty: the job itself)."""
    return {
        "phase": outcome.phase,
        "run": outcome.run,
        "status": outcome.status,
        "duration": outcome.duration,
        "error": outcome.error,
        "error_type": outcome.error_type,
        "traceback": outcome.traceback,
        "artifacts": {k: str(v) for k, v in outcome.result.artifacts.items()} if outcome.result else {},
        "metadata": _jsonable(dict(outcome.result.metadata)) if outcome.result else {},
        "worker": outcome.worker,
        "started": outcome.started,
        "finished": outcome.finished,
        "lineage": list(outcome.lineage),
        "parts": [_jsonable(dict(part)) for part in outcome.parts],
    }


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return repr(value)
    return value


_MARK: dict[str, str] = {
    Status.DONE: "✓",
    Status.CACHED: "c",
    Status.FAILED: "✗",
    Status.SKIPPED: "-",
    Status.MISSING: "?",
}


def render_report(report: PipelineReport, *, max_runs: int = 40) -> str:
    """Plain text, readable in a terminal and in a batch log file alike."""
    width = max([len(p) for p in report.phases] + [5])
    lines = [f"gyre report — {report.summary()}", f"  execution: {report.execution}; seed: {report.seed}"]
    header = f"  {'phase':<{width}}  {'done':>6} {'cached':>6} {'failed':>6} {'skipped':>7} {'missing':>7}"
    lines += ["", header]
    for phase, counts in report.counts().items():
        lines.append(
            f"  {phase:<{width}}  {counts['done']:>6} {counts['cached']:>6} {counts['failed']:>6} "
            f"{counts['skipped']:>7} {counts['missing']:>7}"
        )
    groups = group_failures(report.outcomes)
    if groups:
        lines += ["", "  failures (alike failures of a phase on one line, with their runs):"]
        for group in groups[:50]:
            lines.append(f"    {group.phase}, {failure_line(group)}")
        if len(groups) > 50:
            lines.append(f"    ... and {len(groups) - 50} more kinds of failure (see report.json)")
    all_runs = sorted(set(report.runs) | set(report.missing_runs))
    if 0 < len(all_runs) <= max_runs:
        widths = [max(8, len(p)) for p in report.phases]  # phase names whole, never cut
        lines += ["", "  " + "run".rjust(6) + "  " + "  ".join(p.rjust(w) for p, w in zip(report.phases, widths))]
        for run in all_runs:
            cells: list[str] = []
            for phase in report.phases:
                status = report.status(phase, run)
                outcome: TaskOutcome | None = None if status == Status.MISSING else report.outcome(phase, run)
                duration = outcome.work if outcome is not None else None
                text = _MARK[status] + (f" {duration:5.2f}s" if duration is not None and status == Status.DONE else "")
                cells.append(text.rjust(widths[len(cells)]))
            lines.append("  " + str(run).rjust(6) + "  " + "  ".join(cells))
        lines.append("  (✓ done, c cached, ✗ failed, - skipped, ? missing)")
    lines += render_parts(report.outcomes)
    lines += render_lineage(report.children, root=report.pipeline)
    if report.notes:
        lines += ["", *[f"  note: {note}" for note in report.notes]]
    return "\n".join(lines)


def render_parts(outcomes: Sequence[TaskOutcome], *, max_lines: int = 40) -> list[str]:
    """The parts of the split runs, one line each: ``clouds run 7 part 3/8, events 3000-3999: done 1.20 s``."""
    split = sorted((o for o in outcomes if o.parts), key=lambda o: (o.run, o.phase))
    if not split:
        return []
    head = f"  split runs ({len(split)} (phase, run)s in parts, then merged; the seconds above are parts + merge):"
    lines = ["", head]
    for outcome in split:
        for part in outcome.parts:
            seconds = part.get("seconds")
            took = f" {seconds:.2f} s" if isinstance(seconds, (int, float)) else ""
            lines.append(
                f"    {outcome.phase} run {outcome.run} part {part['index']}/{part['count']}, "
                f"events {part['first']}-{part['last']}: {part['status']}{took}"
            )
    if len(lines) > max_lines + 2:
        lines = [*lines[: max_lines + 2], f"    ... {len(lines) - max_lines - 2} more parts (see report.json)"]
    return lines


def render_lineage(children: Sequence[ChildSummary], *, root: str, max_lines: int = 60) -> list[str]:
    """The lineage tree as indented text lines (empty when there are no children)."""
    if not children:
        return []
    lines = ["", f"  lineage: {lineage_summary(children)}", f"    {root}  (generation 0)"]
    ordered = tree_order(children)
    for child in ordered[:max_lines]:
        indent = "    " + "   " * (child.generation - 1) + "└─ "
        if child.status == "refused":
            detail = f"refused: {child.refusal}"
        else:
            runs = ",".join(str(r) for r in child.runs)
            detail = f"{child.status}  runs {runs}"
            if child.duration is not None:
                detail += f"  {child.duration:.2f} s"
            if child.failed_runs:
                detail += f"  (failed runs {','.join(str(r) for r in child.failed_runs)})"
        lines.append(f"{indent}{child.name}  gen {child.generation}  {detail}  — {child.reason}")
        if child.error and child.status != "refused":
            lines.append(f"{' ' * len(indent)}   error: {child.error}")
    if len(ordered) > max_lines:
        lines.append(f"    ... and {len(ordered) - max_lines} more (see report.json)")
    return lines
