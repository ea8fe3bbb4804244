"""The report as text: a table of counts per phase, the failures, and a small run × phase grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..adaptive.lineage import render_lineage

if TYPE_CHECKING:
    from ..outcome import TaskOutcome
    from .model import PipelineReport

__all__ = ["render_report"]

_MARK = {"done": "✓", "cached": "c", "failed": "✗", "skipped": "-", "missing": "?"}


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
    failures = report.failures()
    if failures:
        lines += ["", "  failures:"]
        for failure in failures[:50]:
            lines.append(f"    run {failure.run} phase {failure.phase}: {failure.error}")
        if len(failures) > 50:
            lines.append(f"    ... and {len(failures) - 50} more (see report.json)")
    all_runs = sorted(set(report.runs) | set(report.missing_runs))
    if 0 < len(all_runs) <= max_runs:
        lines += ["", "  " + "run".rjust(6) + "  " + "  ".join(p[:8].rjust(8) for p in report.phases)]
        for run in all_runs:
            cells = []
            for phase in report.phases:
                status = report.status(phase, run)
                outcome: TaskOutcome | None = None if status == "missing" else report.outcome(phase, run)
                duration = outcome.duration if outcome is not None else None
                text = _MARK[status] + (f" {duration:5.2f}s" if duration is not None and status == "done" else "")
                cells.append(text.rjust(8))
            lines.append("  " + str(run).rjust(6) + "  " + "  ".join(cells))
        lines.append("  (✓ done, c cached, ✗ failed, - skipped, ? missing)")
    lines += render_lineage(report.children, root=report.pipeline)
    if report.notes:
        lines += ["", *[f"  note: {note}" for note in report.notes]]
    return "\n".join(lines)
