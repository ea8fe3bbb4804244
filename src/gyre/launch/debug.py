"""Debug one task: run exactly one (phase, run) in this process, as the job ran it, into pdb on an exception.

The phase gets what it got in the job: its upstream phase's recorded artifact (or the run
file, for the first phase; an inactive upstream phase's ``construct_artifact``), the same
generator (the recorded seed, the phase and the run) and its own shared data and assets.
Nothing else is computed. The phase writes its artifact where the job would; the manifest
is left as it is, so if the new artifact differs from the recorded one, the next job sees its
checksum and recomputes that (phase, run) and what follows it.
"""

from __future__ import annotations

import logging
import pdb
import sys
from pathlib import Path

from ..errors import ConfigError, MissingArtifactError
from ..job.resume import workspace_seed
from ..job.worker import TaskSpec, execute_phase
from ..pipeline import Pipeline
from ..result import PhaseResult
from ..runs import find_runs
from ..workspace.lock import WorkspaceLock
from ..workspace.manifest import Manifest, ManifestRecord, verify_artifacts

__all__ = ["debug_task"]

log = logging.getLogger(__name__)


def debug_task(pipeline: Pipeline, *, phase: str, run: int, post_mortem: bool = True) -> PhaseResult:
    """Run ``phase`` on ``run`` alone, in this process, from the recorded upstream artifacts.

    With ``post_mortem`` (the default) an exception stops in pdb where it was raised, then
    propagates. Returns the phase's result. Holds the workspace's lock while it runs.

    Raises
    ------
    ConfigError
        No such phase, or the run has no file.
    MissingArtifactError
        The upstream phase has no intact recorded artifact for the run: run the job first.
    """
    target = pipeline.phase(phase)
    index = pipeline.phases.index(target)
    selection = find_runs(pipeline.trace_path, [run], pattern=pipeline.run_pattern)
    if not selection.found:
        raise ConfigError(f"run {run} has no file in {pipeline.trace_path} (looked for {pipeline.run_pattern})")
    workspace = Path(pipeline.workspace_path)
    pipeline.create_workspace()
    with WorkspaceLock(workspace):
        records = Manifest(workspace).load_all()
        payload = _upstream(pipeline, index, run, PhaseResult({"run": selection.found[0].path}, run=run), records)
        record = records.get((phase, run))
        recorded = record.config.get("seed") if record is not None else None
        seed = recorded if isinstance(recorded, int) else workspace_seed(workspace, pipeline.seed)
        target.create_assets(workspace)
        spec = TaskSpec(
            phase=target,
            run=run,
            compute=True,
            workspace=workspace,
            seed=seed,
            token=f"debug-{phase}-{run}",
            run_file_schema=target.incoming_schema if index == 0 else None,
            raise_errors=True,
        )
        log.info("debugging phase %s on run %d (seed %d) in this process", phase, run, seed)
        try:
            outcome = execute_phase(spec, payload)
        except BaseException as exc:
            if post_mortem and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                _post_mortem(exc)
            raise
    assert outcome.result is not None
    return outcome.result


def _upstream(
    pipeline: Pipeline, index: int, run: int, run_file: PhaseResult, records: dict[tuple[str, int], ManifestRecord]
) -> PhaseResult:
    """What phase ``index`` receives for ``run``: the previous phase's recorded (or constructed) artifact."""
    if index == 0:
        return run_file
    previous = pipeline.phases[index - 1]
    workspace = Path(pipeline.workspace_path)
    record = records.get((previous.name, run))
    if record is not None and record.status == "done" and verify_artifacts(record, workspace, policy="stat") is None:
        return PhaseResult(record.artifact_paths(workspace), run=run, metadata=record.metadata)
    if not pipeline.active[index - 1]:
        return previous.construct_artifact(_upstream(pipeline, index - 1, run, run_file, records), workspace)
    if record is None:
        problem = "it has no record"
    elif record.status != "done":
        problem = "its last attempt failed"
    else:
        problem = str(verify_artifacts(record, workspace, policy="stat"))
    raise MissingArtifactError(
        f"phase {pipeline.phases[index].name!r} of run {run} needs the artifact of phase {previous.name!r}, but "
        f"{problem} (workspace {workspace}): run the job over this run first (gyre run PIPELINE --runs {run}-{run})",
        phase=previous.name,
        run=run,
    )


def _post_mortem(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(exc, file=sys.stderr)
    where = "entering pdb where it was raised (`up` climbs towards your phase, `q` quits)"
    print(f"gyre: {type(exc).__name__} in the debugged task; {where}", file=sys.stderr, flush=True)
    pdb.post_mortem(exc.__traceback__)
