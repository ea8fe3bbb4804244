"""One line per group of alike failures, the same in the terminal, the notebook and the printed report."""

from __future__ import annotations

from ..result import FailureGroup
from ..runs import format_runs

__all__ = ["failure_line"]


def failure_line(group: FailureGroup) -> str:
    """One group of alike failures on one line: its runs (as ranges), how many, the first run's message."""
    runs = group.runs
    where = f"run {runs[0]}" if len(runs) == 1 else f"runs {format_runs(runs)} ({len(runs)})"
    message = (group.message.splitlines() or [""])[0]
    return f"{where}: {message}"
