"""What runs on a worker for one (phase, run): compute it or point at its cached artifact."""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..context import RunContext, describe_part
from ..errors import BadRunFileError, InvalidResultError, MissingArtifactError, PhaseFailed, RunError
from ..phase import Phase
from ..progress import LOCAL_PROGRESS, ProgressReporter, progress_topic
from ..result import PhaseResult, Status, TaskOutcome
from ..schema import Schema
from ..workspace.manifest import artifact_facts
from .deadline import NOT_STARTED
from .seeding import block_generator, run_generator
from .shared import load_shared

__all__ = ["PickledPhase", "TaskSpec", "execute_phase", "failed_outcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to execute one (phase, run); small and picklable (paths, not handles)."""

    phase: Phase
    run: int
    compute: bool
    workspace: Path
    seed: int
    token: str
    lineage: tuple[str, ...] = ()
    run_file_schema: Schema | None = None
    raise_errors: bool = False
    progress_interval: float = 0.5
    #: the latest time (epoch seconds) at which this (phase, run) may start and still end before
    #: the job's deadline less its margin (``gyre.job.deadline``); ``None``: no deadline
    start_by: float | None = None
    #: a split phase's events (the whole run's, or a part's) and, for a part, ``(index, count)``
    events: range | None = None
    part: tuple[int, int] | None = None
    #: the phase's pickled form, shared by all the job's specs of this phase (see ``PickledPhase``)
    pickled: PickledPhase | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """``run 7``, or ``run 7 part 3/8, events 3000-3999`` for a part of a split run."""
        return describe_part(self.run, self.part, self.events)

    def skipped(self, why: str) -> TaskOutcome:
        """The outcome of this (phase, run) when it is not run: status ``skipped``, ``error`` saying why."""
        return TaskOutcome(
            phase=self.phase.name,
            run=self.run,
            status=Status.SKIPPED,
            error=f"skipped: {why}",
            lineage=self.lineage,
            reason=why,
            part=self.part,
            events=self.events if self.part else None,
        )

    def __reduce__(self) -> tuple[object, ...]:
        # the phase goes through cloudpickle so that phases defined in a pipeline file loaded
        # by path (registered to pickle by value) reach workers that cannot import that file
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in ("phase", "pickled")}
        pickled = self.pickled if self.pickled is not None and self.pickled.phase is self.phase else None
        blob = (pickled or PickledPhase(self.phase)).dumps()
        return (_rebuild_spec, (blob, fields))


class PickledPhase:
    """A phase and its cloudpickle bytes, made on first use and then reused by every task of the job.

    Pickling a phase defined by value (a pipeline file loaded by path, ``__main__``) costs
    far more than a tiny task; one holder per phase per job makes it a one-off.
    """

    __slots__ = ("_bytes", "phase")

    def __init__(self, phase: Phase, pickled: bytes | None = None) -> None:
        self.phase = phase
        self._bytes = pickled

    def dumps(self) -> bytes:
        """The pickled phase (computed once)."""
        if self._bytes is None:
            import cloudpickle

            self._bytes = bytes(cloudpickle.dumps(self.phase))
        return self._bytes


def _rebuild_spec(phase: bytes, fields: dict[str, Any]) -> TaskSpec:
    import pickle

    loaded = pickle.loads(phase)
    # the bytes stay with the spec: a scheduler that unpacks a graph and sends the task on
    # to a worker forwards them instead of pickling the phase again
    return TaskSpec(phase=loaded, pickled=PickledPhase(loaded, phase), **fields)


def execute_phase(spec: TaskSpec, upstream: TaskOutcome | PhaseResult) -> TaskOutcome:
    """Run one (phase, run) and describe what became of it; never raises unless ``spec.raise_errors``.

    ``upstream`` is the previous phase's outcome, or the run file's ``PhaseResult`` for the
    first phase. A failed upstream makes this task ``skipped`` without calling the phase, and
    so does a start after ``spec.start_by`` (it would end after the job's deadline).
    """
    phase = spec.phase
    if isinstance(upstream, TaskOutcome):
        if not upstream.ok or upstream.result is None:
            return spec.skipped(f"phase {upstream.phase!r} {upstream.status} for run {spec.run}")
        payload = upstream.result
    else:
        payload = upstream
    if spec.compute and spec.start_by is not None and time.time() > spec.start_by:
        return spec.skipped(NOT_STARTED)
    started = time.time()
    worker = _worker_address()
    children: list[Any] = []
    try:
        result = _compute(spec, payload, children) if spec.compute else _load(spec, payload)
        artifacts = artifact_facts(result, spec.workspace) if spec.compute else {}
    except Exception as exc:
        if spec.raise_errors:
            raise
        error = exc if isinstance(exc, RunError) else _wrap(exc, spec)
        return failed_outcome(spec, exc, error, started=started, worker=worker, children=tuple(children))
    return TaskOutcome(
        phase=phase.name,
        run=spec.run,
        status=Status.DONE if spec.compute else Status.CACHED,
        result=result,
        started=started,
        finished=time.time(),
        worker=worker,
        host=socket.gethostname(),
        lineage=spec.lineage,
        artifacts=artifacts,
        children=tuple(children),
        part=spec.part,
        events=spec.events if spec.part else None,
    )


def failed_outcome(
    spec: TaskSpec,
    exc: BaseException,
    error: BaseException,
    *,
    started: float,
    worker: str,
    children: tuple[Any, ...] = (),
    parts: tuple[Any, ...] = (),
) -> TaskOutcome:
    """The ``failed`` outcome of ``spec`` for ``exc`` (raised in it), described by ``error``; logs the traceback."""
    detail = "".join(traceback.format_exception(exc))
    log.error("phase %s failed on %s:\n%s", spec.phase.name, spec.label, detail)
    return TaskOutcome(
        phase=spec.phase.name,
        run=spec.run,
        status=Status.FAILED,
        error=str(error),
        error_type=type(exc).__name__,
        traceback=detail,
        started=started,
        finished=time.time(),
        worker=worker,
        host=socket.gethostname(),
        lineage=spec.lineage,
        children=children,
        part=spec.part,
        events=spec.events if spec.part else None,
        parts=parts,
    )


def _compute(spec: TaskSpec, payload: PhaseResult, children: list[Any]) -> PhaseResult:
    phase = spec.phase
    if spec.run_file_schema:
        _check_run_file(spec, payload)
    ctx = RunContext(
        workspace=spec.workspace,
        run=spec.run,
        phase=phase.name,
        rng=run_generator(spec.seed, phase.name, spec.run, spec.lineage),
        progress=ProgressReporter(phase.name, spec.run, _progress_emitter(spec.token), interval=spec.progress_interval),
        shared=load_shared(spec.token, phase, spec.workspace),
        log=logging.getLogger(f"gyre.phase.{phase.name}"),
        lineage=spec.lineage,
        events=spec.events,
        part=spec.part,
        events_per_block=phase.split.events_per_block if phase.split else 0,
        block_rng=_block_rng(spec) if spec.events is not None else None,
    )
    ctx.progress.start()
    try:
        result = phase.run(payload, ctx)
    except OSError as exc:  # without a schema, an unreadable run file shows up only here
        _blame_run_file(spec, payload, exc)
        raise
    children.extend(ctx.children)  # adaptive child requests go back to the driver with the outcome
    ctx.progress.finish()
    _check_result(spec, result, what="returned")
    if spec.part is not None:
        _mark_parts(spec, result)
    if not result.successful:
        facts = ", ".join(f"{k}={v}" for k, v in result.metadata.items())
        raise InvalidResultError(
            f"phase {phase.name!r} judged {spec.label} invalid (successful=False)" + (f": {facts}" if facts else ""),
            phase=phase.name,
            run=spec.run,
        )
    return result


def _block_rng(spec: TaskSpec) -> Callable[[int], np.random.Generator]:
    """Block index → its generator, for ``ctx.event_blocks()``."""

    def generator(block: int) -> np.random.Generator:
        return block_generator(spec.seed, spec.phase.name, spec.run, block, spec.lineage)

    return generator


def _mark_parts(spec: TaskSpec, result: PhaseResult) -> None:
    """Check that a part wrote its own artifacts (not the run's) and mark the HDF5 ones with its events."""
    from ..io.parts import is_hdf5, mark_part

    assert spec.events is not None
    for key, path in result.artifacts.items():
        if Path(path).parent.parent.name != "parts":
            raise InvalidResultError(
                f"phase {spec.phase.name!r} returned artifact {key!r} at {path} for {spec.label}: a part "
                "must write its own file; write to ctx.artifact_path() (or ctx.artifact()), which gives "
                "the part's path, not to phase.artifact_path(...)",
                phase=spec.phase.name,
                run=spec.run,
            )
        if is_hdf5(path):
            mark_part(path, spec.events)


def _load(spec: TaskSpec, payload: PhaseResult) -> PhaseResult:
    phase = spec.phase
    result = phase.construct_artifact(payload, spec.workspace)
    _check_result(spec, result, what="constructed", missing_error=MissingArtifactError)
    return result


def _check_result(
    spec: TaskSpec,
    result: Any,
    *,
    what: str,
    missing_error: type[RunError] = InvalidResultError,
) -> None:
    name, run = spec.phase.name, spec.run
    if not isinstance(result, PhaseResult):
        raise InvalidResultError(
            f"phase {name!r} {what} a {type(result).__name__} for run {run}, not a gyre.PhaseResult",
            phase=name,
            run=run,
        )
    if result.run != run:
        raise InvalidResultError(
            f"phase {name!r} {what} a result for run {result.run} while processing run {run}",
            phase=name,
            run=run,
        )
    for key, path in result.artifacts.items():
        if not path.exists():
            if missing_error is MissingArtifactError:
                message = (
                    f"cached artifact {key!r} of inactive phase {name!r} for run {run} does not exist: {path} "
                    f"(run the phase active once, or exclude run {run})"
                )
            else:
                message = f"phase {name!r} reported artifact {key!r} for run {run} at {path}, but no file is there"
            raise missing_error(message, phase=name, run=run)


def _check_run_file(spec: TaskSpec, payload: PhaseResult) -> None:
    assert spec.run_file_schema is not None
    name, run = spec.phase.name, spec.run
    for path in payload.artifacts.values():
        try:
            problems = spec.run_file_schema.file_differences(path)
        except OSError as exc:
            raise _unreadable_run_file(spec, path, exc) from exc
        if problems:
            raise BadRunFileError(
                f"run file {path} of run {run} does not fit phase {name!r}: " + "; ".join(problems),
                phase=name,
                run=run,
            )


def _blame_run_file(spec: TaskSpec, payload: PhaseResult, exc: OSError) -> None:
    """Raise ``BadRunFileError`` naming the run file if ``exc`` came from a run file that is not readable HDF5."""
    path = payload.artifacts.get("run")
    if path is None:
        return
    import h5py

    try:
        with h5py.File(path, "r"):
            return
    except OSError as reason:
        raise _unreadable_run_file(spec, path, reason) from exc


def _unreadable_run_file(spec: TaskSpec, path: Path, reason: OSError) -> BadRunFileError:
    """The error of a run file that does not open as HDF5, naming the file, the run and the phase."""
    return BadRunFileError(
        f"run file {path} of run {spec.run} cannot be read as HDF5 (needed by phase {spec.phase.name!r}): {reason}",
        phase=spec.phase.name,
        run=spec.run,
    )


def _wrap(exc: Exception, spec: TaskSpec) -> PhaseFailed:
    message = f"phase {spec.phase.name!r} raised on {spec.label}: {type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        message += f" (file {exc.filename})"
    return PhaseFailed(message, phase=spec.phase.name, run=spec.run)


def _worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _worker_address() -> str:
    worker = _worker()
    if worker is not None:
        return str(worker.address)
    return f"{socket.gethostname()}:{os.getpid()}"


def _progress_emitter(token: str) -> Callable[[dict[str, Any]], None] | None:
    """Where a run's progress goes: the job's own event topic on the scheduler; outside a dask
    worker, the watch of a job run in this very thread (the sync model), if any."""
    worker = _worker()
    if worker is None:
        return LOCAL_PROGRESS.get()
    topic = progress_topic(token)

    address = str(worker.address)

    def emit(message: dict[str, Any]) -> None:
        # where and since when it runs: the gyre page's running bars and worker column
        worker.log_event(topic, {**message, "worker": address, "at": time.time()})

    return emit
