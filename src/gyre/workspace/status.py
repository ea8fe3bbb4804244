"""What the manifest knows, for people: per-phase status of a workspace and how one artifact was made."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError
from ..runs import runs_phrase
from .layout import read_report, report_path
from .lock import read_lock
from .manifest import Manifest, ManifestRecord, verify_artifacts

__all__ = ["STATUS_COLUMNS", "render_provenance", "render_status", "workspace_status"]

#: the columns of ``gyre status``
STATUS_COLUMNS = ("done", "stale", "missing", "failed")


def _check_workspace(workspace: Path) -> Path:
    workspace = Path(workspace)
    if not workspace.is_dir():
        raise ConfigError(f"{workspace} is not a gyre workspace (no such directory)")
    if not (workspace / ".gyre").is_dir() and not report_path(workspace).exists():
        raise ConfigError(f"{workspace} is not a gyre workspace (no .gyre/ manifest and no report.json)")
    return workspace


def workspace_status(
    workspace: Path, *, verify: str = "checksum", phases: Sequence[str] | None = None
) -> dict[str, dict[str, list[int]]]:
    """Per phase, the runs that are done, stale, missing and failed, judged from the manifest alone.

    *done*: a completed record whose artifacts verify (``verify``: ``"checksum"`` or
    ``"stat"``) and whose input is still the upstream record it was made from, itself done.
    *stale*: a completed record whose artifact no longer verifies (changed, corrupted), or
    whose upstream (phase, run) is not done any more. *missing*: no record, or a record whose
    artifact file is gone. *failed*: the last attempt failed. The runs are those known to
    the workspace (from any record or the last report); ``phases`` (a pipeline's, in order)
    replaces the phases found there. Configuration changes need the pipeline's plan:
    ``gyre run PIPELINE --dry-run``.
    """
    workspace = _check_workspace(workspace)
    manifest = Manifest(workspace)
    records = manifest.load_all()
    report = read_report(workspace, missing_ok=True)
    if phases is None:
        phases = list(report.get("phases", []))
        phases += [p for p in manifest.phases() if p not in phases]
    runs = sorted({run for _, run in records} | set(report.get("requested_runs", [])))
    table: dict[str, dict[str, list[int]]] = {p: {c: [] for c in STATUS_COLUMNS} for p in phases}
    states: dict[tuple[str, int], str] = {}
    for phase in phases:
        for run in runs:
            table[phase][_state(records, phase, run, workspace, verify, states)].append(run)
    return table


def _state(
    records: dict[tuple[str, int], ManifestRecord],
    phase: str,
    run: int,
    workspace: Path,
    verify: str,
    states: dict[tuple[str, int], str],
) -> str:
    """The state of (phase, run), its upstream's first (memoised in ``states``)."""
    if (phase, run) in states:
        return states[(phase, run)]
    states[(phase, run)] = "stale"  # a cycle in damaged records reads as stale
    record = records.get((phase, run))
    if record is None:
        state = "missing"
    elif record.status != "done":
        state = "failed"
    else:
        state = "done"
        upstream = record.inputs.get("upstream")
        if upstream:
            source_phase = str(upstream.get("phase", ""))
            source = records.get((source_phase, run))
            if source is None or source.fingerprint != upstream.get("fingerprint"):
                state = "stale"
            elif _state(records, source_phase, run, workspace, verify, states) != "done":
                state = "stale"  # made from an artifact that no longer verifies
        problem = verify_artifacts(record, workspace, policy=verify)
        if problem is not None:
            state = "missing" if problem.endswith("is missing") else "stale"
    states[(phase, run)] = state
    return state


def render_status(
    workspace: Path,
    *,
    verify: str = "checksum",
    phases: Sequence[str] | None = None,
    table: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """``gyre status``: a table of done / stale / missing / failed runs per phase, and the lock holder.

    ``table`` is a :func:`workspace_status` table to show (default: computed here); ``notes``
    are lines added at the end.
    """
    if table is None:
        table = workspace_status(workspace, verify=verify, phases=phases)
    width = max([len(p) for p in table] + [5])
    lines = [f"workspace {workspace}"]
    holder = read_lock(Path(workspace))
    if holder:
        lines.append(
            f"  in use by a pipeline on {holder.get('host')}, pid {holder.get('pid')}, since {holder.get('started')}"
        )
    lines.append(f"  {'phase':<{width}}  " + " ".join(f"{c:>7}" for c in STATUS_COLUMNS))
    for phase, columns in table.items():
        lines.append(f"  {phase:<{width}}  " + " ".join(f"{len(columns[c]):>7}" for c in STATUS_COLUMNS))
    for phase, columns in table.items():
        for column in ("stale", "missing", "failed"):
            if columns[column]:
                lines.append(f"  {phase} {column}: {runs_phrase(columns[column])}")
    return "\n".join([*lines, *notes])


def render_provenance(workspace: Path, phase: str, run: int) -> str:
    """``gyre provenance``: how the artifact of (phase, run) was made, back to its run file."""
    workspace = _check_workspace(workspace)
    manifest = Manifest(workspace)
    record = manifest.read(phase, run)
    if record is None:
        known = ", ".join(manifest.phases()) or "none"
        raise ConfigError(
            f"workspace {workspace} has no record of phase {phase!r} for run {run} (phases with records: {known})"
        )
    lines = _describe(record, workspace)
    upstream = record.inputs.get("upstream")
    seen = {phase}
    while upstream and upstream.get("phase") not in seen:
        seen.add(upstream["phase"])
        source = manifest.read(upstream["phase"], run)
        lines.append("")
        if source is None:
            lines.append(f"made from phase {upstream['phase']!r}, which has no record any more")
            break
        match = "" if source.fingerprint == upstream.get("fingerprint") else " (CHANGED since: this artifact is stale)"
        lines.append(f"made from phase {source.phase!r}{match}:")
        lines += ["  " + line for line in _describe(source, workspace)]
        upstream = source.inputs.get("upstream")
    return "\n".join(lines)


def _describe(record: ManifestRecord, workspace: Path) -> list[str]:
    config = record.config
    lines = [
        f"phase {record.phase!r}, run {record.run}: {record.status}",
        f"  made     {record.started} → {record.finished}{_duration(record)} on {record.host} (worker {record.worker})",
        f"  versions gyre {record.gyre_version}, {config.get('class')} version {config.get('version')}",
        f"  config   {json.dumps(config.get('config', {}), sort_keys=True)}",
        f"  seed     {config.get('seed')}" + (f", lineage {config.get('lineage')}" if config.get("lineage") else ""),
        f"  fingerprint {record.fingerprint[:16]} (config {record.config_fingerprint[:16]}, "
        f"input {record.input_fingerprint[:16]})",
    ]
    run_file = record.inputs.get("run_file")
    if run_file:
        facts = ", ".join(f"{k} {v}" for k, v in run_file.items() if k != "name")
        lines.append(f"  input    run file {run_file.get('name')} ({facts})")
    if record.error:
        lines.append(f"  error    {record.error}")
    problem = verify_artifacts(record, workspace, policy="checksum") if record.status == "done" else None
    for name, fact in record.artifacts.items():
        lines.append(f"  artifact {name}: {fact.get('path')} ({fact.get('size')} bytes, {fact.get('checksum')})")
    if record.status == "done":
        lines.append(f"  now      {'intact' if problem is None else problem}")
    return lines


def _duration(record: ManifestRecord) -> str:
    if not record.started or not record.finished:
        return ""
    seconds = (datetime.fromisoformat(record.finished) - datetime.fromisoformat(record.started)).total_seconds()
    return f" ({seconds:.2f} s)"
