"""One line per group of alike failures, the same in the terminal, the notebook and the printed report."""

from __future__ import annotations

from ..result import FailureGroup
from ..runs import runs_phrase

__all__ = ["failure_line"]


def failure_line(group: FailureGroup) -> str:
    """One group of alike failures on one line: its runs (as ranges), how many, the first run's message."""
    runs = group.runs
    where = runs_phrase(runs) + (f" ({len(runs)})" if len(runs) > 1 else "")
    message = (group.message.splitlines() or [""])[0]
    return f"{where}: {message}"
