"""The lineage tree of adaptive children as the report keeps it: one ChildSummary per request."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHILD_STATUSES", "ChildSummary", "lineage_summary", "tree_order"]

#: every status a child can end in: ran and completed, had a failed run, never ran (cancelled), or refused
CHILD_STATUSES = ("done", "failed", "skipped", "refused")


@dataclass(frozen=True)
class ChildSummary:
    """What became of one child request: who asked, why, where it lives, how it ended.

    A ``refused`` child never ran; ``refusal`` says which limit or problem stopped it.
    ``started``/``finished`` are the first start and the last end of its own tasks (epoch seconds).
    """

    name: str
    generation: int
    parent: str
    reason: str
    status: str
    requested_by: str
    runs: tuple[int, ...] = ()
    missing_runs: tuple[int, ...] = ()
    failed_runs: tuple[int, ...] = ()
    phases: tuple[str, ...] = ()
    workspace: Path | None = None
    started: float | None = None
    finished: float | None = None
    refusal: str | None = None
    error: str | None = None

    @property
    def lineage(self) -> tuple[str, ...]:
        """The name's parts after the top-level pipeline's name (one per generation)."""
        return tuple(self.name.split(".")[-self.generation :]) if self.generation else ()

    @property
    def duration(self) -> float | None:
        """Seconds from the child's first task start to its last task end, if it ran."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            "name": self.name,
            "generation": self.generation,
            "parent": self.parent,
            "reason": self.reason,
            "status": self.status,
            "requested_by": self.requested_by,
            "runs": list(self.runs),
            "missing_runs": list(self.missing_runs),
            "failed_runs": list(self.failed_runs),
            "phases": list(self.phases),
            "workspace": str(self.workspace) if self.workspace is not None else None,
            "started": self.started,
            "finished": self.finished,
            "duration": self.duration,
            "refusal": self.refusal,
            "error": self.error,
        }


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def tree_order(children: Sequence[ChildSummary]) -> list[ChildSummary]:
    """The children depth first, siblings in natural name order (``r2`` before ``r10``): the same every time."""
    return sorted(children, key=lambda c: tuple(_natural(part) for part in c.lineage))


def lineage_summary(children: Sequence[ChildSummary]) -> str:
    """A short phrase for the report's summary line, e.g. ``"4 children (1 failed, 2 refused)"``."""
    ran = [c for c in children if c.status != "refused"]
    parts = [f"{sum(c.status == s for c in children)} {s}" for s in ("failed", "skipped", "refused")]
    detail = ", ".join(p for p in parts if not p.startswith("0 "))
    text = f"{len(ran)} child{'ren' if len(ran) != 1 else ''}"
    return text + (f" ({detail})" if detail else "")
