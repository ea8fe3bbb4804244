"""What runs on a worker to join a split run's parts into the run's one artifact per phase.

A split (phase, run) is computed as parts (``execute_phase`` with a part's events), then one
merge task takes every part's outcome: if all parts succeeded it calls the phase's own
``merge(parts, ctx)`` or, by default, concatenates each artifact's parts along ``event``
(:func:`gyre.io.parts.concat_artifacts`), and returns the (phase, run)'s outcome, checked
and checksummed like any other. A failed part fails the run, naming the part's events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..context import RunContext, whole_artifact_path
from ..errors import InvalidResultError, PhaseFailed, RunError
from ..progress import ProgressReporter
from ..result import PhaseResult, Status, TaskOutcome
from ..workspace.manifest import artifact_facts
from .seeding import run_generator
from .shared import load_shared
from .worker import TaskSpec, _check_result, _worker_address, failed_outcome

__all__ = ["default_merge", "failed_run", "merge_parts", "part_summary"]

log = logging.getLogger(__name__)


def part_summary(outcome: TaskOutcome) -> dict[str, Any]:
    """One part's line in its run's outcome: index, count, events, status, seconds and worker."""
    index, count = outcome.part or (1, 1)
    events = outcome.events or range(0)
    return {
        "index": index,
        "count": count,
        "first": events.start,
        "last": events.stop - 1,
        "status": str(outcome.status),
        "seconds": outcome.duration,
        "worker": outcome.worker,
    }


def merge_parts(spec: TaskSpec, upstream: TaskOutcome | PhaseResult, *parts: TaskOutcome) -> TaskOutcome:
    """The (phase, run) outcome of a split run from its parts' outcomes (in event order).

    ``upstream`` is the previous phase's (merged) outcome, or the run file's payload: if it
    did not succeed, the phase is ``skipped`` as it would be unsplit. Never raises unless
    ``spec.raise_errors``, like ``execute_phase``.
    """
    name = spec.phase.name
    if isinstance(upstream, TaskOutcome) and (not upstream.ok or upstream.result is None):
        return spec.skipped(f"phase {upstream.phase!r} {upstream.status} for run {spec.run}")
    summaries = tuple(part_summary(p) for p in parts)
    failed = next((p for p in parts if p.status == Status.FAILED), None)
    if failed is not None:
        return failed_run(spec, failed, parts=summaries)
    unfinished = next((p for p in parts if not p.ok or p.result is None), None)
    if unfinished is not None:
        outcome = spec.skipped(unfinished.reason or f"{_label(unfinished)} was {unfinished.status}")
        return TaskOutcome(**{**_fields(outcome), "parts": summaries})
    started = time.time()
    try:
        result = _merge(spec, [p.result for p in parts if p.result is not None])
        artifacts = artifact_facts(result, spec.workspace)
    except Exception as exc:
        if spec.raise_errors:
            raise
        error = exc if isinstance(exc, RunError) else _wrap(exc, spec, len(parts))
        return failed_outcome(spec, exc, error, started=started, worker=_worker_address(), parts=summaries)
    return TaskOutcome(
        phase=name,
        run=spec.run,
        status=Status.DONE,
        result=result,
        started=started,
        finished=time.time(),
        worker=_worker_address(),
        lineage=spec.lineage,
        artifacts=artifacts,
        children=tuple(child for p in parts for child in p.children),
        parts=summaries,
    )


def failed_run(spec: TaskSpec, failed: TaskOutcome, *, parts: tuple[Mapping[str, Any], ...] = ()) -> TaskOutcome:
    """The ``failed`` outcome of a split (phase, run) whose part ``failed`` failed, naming the part's events."""
    return TaskOutcome(
        phase=spec.phase.name,
        run=spec.run,
        status=Status.FAILED,
        error=_with_label(failed),
        error_type=failed.error_type,
        traceback=failed.traceback,
        started=failed.started,
        finished=failed.finished,
        worker=failed.worker,
        lineage=spec.lineage,
        parts=parts,
    )


def default_merge(parts: Sequence[PhaseResult], ctx: RunContext) -> PhaseResult:
    """Join each artifact's part files along ``event`` into the run's file; metadata the parts agree on."""
    from ..io.parts import concat_artifacts

    artifacts: dict[str, Path] = {}
    for key, path in parts[0].artifacts.items():
        files = [part.artifacts[key] for part in parts if key in part.artifacts]
        if len(files) != len(parts):
            raise InvalidResultError(
                f"phase {ctx.phase!r}: only {len(files)} of the {len(parts)} parts of run {ctx.run} returned "
                f"artifact {key!r}; every part must return the same artifacts",
                phase=ctx.phase,
                run=ctx.run,
            )
        artifacts[key] = concat_artifacts(files, whole_artifact_path(path))
    return PhaseResult(artifacts, run=ctx.run, metadata=_agreed(part.metadata for part in parts))


def _merge(spec: TaskSpec, parts: list[PhaseResult]) -> PhaseResult:
    phase = spec.phase
    ctx = RunContext(
        workspace=spec.workspace,
        run=spec.run,
        phase=phase.name,
        rng=run_generator(spec.seed, phase.name, spec.run, spec.lineage),
        progress=ProgressReporter(phase.name, spec.run, None),
        shared=load_shared(spec.token, phase, spec.workspace),
        log=logging.getLogger(f"gyre.phase.{phase.name}"),
        lineage=spec.lineage,
        events=spec.events,
    )
    merge = getattr(phase, "merge", None)
    result = merge(parts, ctx) if callable(merge) else default_merge(parts, ctx)
    _check_result(spec, result, what="merged")
    for key, path in result.artifacts.items():
        if Path(path).parent.parent.name == "parts":
            raise InvalidResultError(
                f"phase {phase.name!r} merged run {spec.run} into a part's file ({key!r}: {path}); "
                "merge(parts, ctx) must write the run's artifact, e.g. at ctx.artifact_path()",
                phase=phase.name,
                run=spec.run,
            )
    return result


def _agreed(metadata: Any) -> dict[str, Any]:
    """The metadata entries every part has with the same value."""
    items = list(metadata)
    if not items:
        return {}
    return {k: v for k, v in items[0].items() if all(k in m and _same(m[k], v) for m in items[1:])}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays: no single truth value
        return False


def _label(outcome: TaskOutcome) -> str:
    from ..context import describe_part

    return describe_part(outcome.run, outcome.part, outcome.events)


def _with_label(failed: TaskOutcome) -> str:
    """A failed part's error, naming the part and its events if it does not already."""
    label = _label(failed)
    error = failed.error or f"phase {failed.phase!r} failed"
    return error if label in error else f"{label} failed: {error}"


def _fields(outcome: TaskOutcome) -> Mapping[str, Any]:
    return {name: getattr(outcome, name) for name in outcome.__dataclass_fields__}


def _wrap(exc: Exception, spec: TaskSpec, count: int) -> PhaseFailed:
    what = f"merging the {count} parts of run {spec.run}"
    message = f"phase {spec.phase.name!r}: {what} raised {type(exc).__name__}: {exc}"
    return PhaseFailed(message, phase=spec.phase.name, run=spec.run)
