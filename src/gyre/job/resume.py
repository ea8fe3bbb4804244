"""Resume: decide per (phase, run) whether its recorded artifact can be reused, and record new ones.

For every run, the phases are walked in order. An active (phase, run) is **cached** (not
computed, not even submitted) when the manifest holds a completed record with the same
fingerprint — same phase class, version, ``config()``, seed, and the same input (the run
file's identity, or the upstream fingerprint) — and its artifacts are still there and
match (checksums, or sizes and mtimes). Anything else is computed, and so is everything
downstream of a computed (phase, run). Each decision carries a reason that the report
shows. An inactive phase keeps its meaning (its cached artifact is used as it is) but a
warning says when that artifact was made with another configuration.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..phase import Phase
from ..pipeline import Pipeline
from ..result import PhaseResult, Status, TaskOutcome
from ..runs import RunFile, RunSelection, format_runs, plural, runs_phrase
from ..workspace.atomic import atomic_path
from ..workspace.layout import host_name
from ..workspace.manifest import (
    Manifest,
    ManifestRecord,
    config_fingerprint,
    digest,
    run_file_identity,
    timestamp,
    verify_artifacts,
)
from ..workspace.parts import PartJournal
from .options import ResumePolicy
from .seeding import fresh_seed

__all__ = [
    "ManifestWriter",
    "ResumePlan",
    "TaskDecision",
    "inactive_artifact_exists",
    "plan_resume",
    "stored_seed",
    "workspace_seed",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskDecision:
    """What a job does with one (phase, run): ``compute``, reuse (``cached``) or ``load`` (inactive)."""

    phase: str
    run: int
    action: str
    reason: str
    fingerprint: str
    config_fingerprint: str
    input_fingerprint: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    record: ManifestRecord | None = None


@dataclass(frozen=True)
class ResumePlan:
    """Every (phase, run)'s decision, and the warnings about inactive phases."""

    decisions: Mapping[tuple[str, int], TaskDecision]
    warnings: tuple[str, ...] = ()
    workspace: Path = Path()

    def decision(self, phase: str, run: int) -> TaskDecision:
        """The decision for (phase, run)."""
        return self.decisions[(phase, run)]

    def count(self, action: str) -> int:
        """How many (phase, run)s got ``action``."""
        return sum(1 for d in self.decisions.values() if d.action == action)

    def cached_outcome(self, phase: str, run: int) -> TaskOutcome | None:
        """The ``cached`` outcome the driver records instead of submitting, if (phase, run) is cached."""
        decision = self.decisions.get((phase, run))
        if decision is None or decision.action != "cached" or decision.record is None:
            return None
        record = decision.record
        return TaskOutcome(
            phase=phase,
            run=run,
            status=Status.CACHED,
            result=PhaseResult(record.artifact_paths(self.workspace), run=run, metadata=record.metadata),
            reason=decision.reason,
        )

    def notes(self) -> list[str]:
        """Why (phase, run)s are recomputed, grouped by phase and reason, then the warnings."""
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for decision in self.decisions.values():
            if (decision.action == "compute" and decision.record is not None) or decision.reason == "forced":
                groups[(decision.phase, decision.reason)].append(decision.run)
        notes = [
            f"phase {phase!r}: recomputing {plural(len(runs), 'run')} ({format_runs(sorted(runs))}): {reason}"
            for (phase, reason), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], min(kv[1])))
        ]
        return notes + list(self.warnings)


def plan_resume(
    pipeline: Pipeline,
    selection: RunSelection | Sequence[RunFile],
    *,
    seed: int,
    manifest: Manifest | None = None,
    force: bool = False,
    force_phases: Iterable[str] = (),
    policy: ResumePolicy | None = None,
    lineage: Sequence[str] = (),
    threads: int | None = None,
) -> ResumePlan:
    """Decide, for every (phase, run) of ``selection``, whether to compute it or reuse its record.

    ``force`` recomputes everything; ``force_phases`` recomputes those phases and every
    phase after them. Artifacts are verified in a few threads (hashing releases the GIL).

    Raises
    ------
    ConfigError
        A name in ``force_phases`` is not a phase of the pipeline.
    """
    policy = policy or ResumePolicy()
    manifest = manifest or Manifest(pipeline.workspace_path)
    names = [p.name for p in pipeline.phases]
    forced = set(force_phases)
    unknown = sorted(forced - set(names))
    if unknown:
        raise ConfigError(f"cannot force unknown phase(s) {', '.join(unknown)}; phases: {', '.join(names)}")
    first_forced = min((names.index(n) for n in forced), default=len(names))
    configs = [config_fingerprint(p, seed=seed, lineage=lineage) for p in pipeline.phases]
    runs = selection.found if isinstance(selection, RunSelection) else tuple(selection)
    records = manifest.load_all()  # even when forced: inactive phases still need theirs
    workspace = Path(pipeline.workspace_path)

    def plan_run(run: RunFile) -> list[TaskDecision]:
        identity = run_file_identity(run.path, content=policy.run_identity == "content")
        upstream = digest({"run_file": identity})
        inputs: dict[str, Any] = {"run_file": identity}
        recomputed: str | None = None
        decisions = []
        for index, (phase, active) in enumerate(zip(pipeline.phases, pipeline.active)):
            config_fp, facts = configs[index]
            fingerprint = digest({"config": config_fp, "input": upstream})
            record = records.get((phase.name, run.run))
            common: dict[str, Any] = {
                "phase": phase.name,
                "run": run.run,
                "fingerprint": fingerprint,
                "config_fingerprint": config_fp,
                "input_fingerprint": upstream,
                "config": facts,
                "inputs": inputs,
            }
            if not active:
                decision = _inactive(common, record, pipeline.workspace_path, policy)
                if decision.action == "cached" and record is not None:
                    fingerprint = record.fingerprint  # downstream depends on what is really there
                elif recomputed is None and (
                    record is not None or not inactive_artifact_exists(phase, run.run, workspace)
                ):
                    recomputed = f"the cached artifact of inactive phase {phase.name!r} changed or is missing"
            elif force or index >= first_forced:
                decision = TaskDecision(action="compute", reason="forced", record=record, **common)
            elif recomputed is not None:
                decision = TaskDecision(action="compute", reason=recomputed, record=record, **common)
            else:
                decision = _active(common, record, pipeline.workspace_path, policy)
            if decision.action == "compute" and recomputed is None:
                recomputed = f"upstream phase {phase.name!r} is recomputed"
            decisions.append(decision)
            upstream = fingerprint
            inputs = {"upstream": {"phase": phase.name, "fingerprint": fingerprint}}
        return decisions

    workers = threads or min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        planned = list(pool.map(plan_run, runs))
    decisions = {(d.phase, d.run): d for chain in planned for d in chain}
    return ResumePlan(decisions, tuple(_inactive_warnings(decisions.values())), Path(pipeline.workspace_path))


def _active(
    common: dict[str, Any], record: ManifestRecord | None, workspace: Path, policy: ResumePolicy
) -> TaskDecision:
    if record is None:
        return TaskDecision(action="compute", reason="not done before", **common)
    if record.status != "done":
        return TaskDecision(action="compute", reason="the last attempt failed", record=record, **common)
    if record.fingerprint != common["fingerprint"]:
        return TaskDecision(action="compute", reason=_what_changed(record, common), record=record, **common)
    problem = verify_artifacts(record, workspace, policy=policy.verify)
    if problem is not None:
        return TaskDecision(action="compute", reason=problem, record=record, **common)
    return TaskDecision(action="cached", reason="unchanged", record=record, **common)


def _inactive(
    common: dict[str, Any], record: ManifestRecord | None, workspace: Path, policy: ResumePolicy
) -> TaskDecision:
    if record is None or record.status != "done":
        return TaskDecision(action="load", reason="inactive", **common)
    if verify_artifacts(record, workspace, policy="stat") is not None:
        return TaskDecision(action="load", reason="inactive", record=record, **common)
    if record.fingerprint != common["fingerprint"]:
        reason = f"inactive, made with another configuration: {_what_changed(record, common)}"
        return TaskDecision(action="cached", reason=reason, record=record, **common)
    return TaskDecision(action="cached", reason="inactive", record=record, **common)


def inactive_artifact_exists(phase: Phase, run: int, workspace: Path) -> bool:
    """Whether an inactive phase's ``construct_artifact`` points at files that exist (best effort)."""
    try:
        result = phase.construct_artifact(PhaseResult({}, run=run), workspace)
        return all(Path(path).exists() for path in result.artifacts.values())
    except Exception:  # noqa: BLE001 - a phase that needs its real payload: let the task decide
        return True


def _inactive_warnings(decisions: Iterable[TaskDecision]) -> list[str]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for decision in decisions:
        if decision.reason.startswith("inactive, made with"):
            groups[(decision.phase, decision.reason.split(": ", 1)[1])].append(decision.run)
    warnings = []
    for (phase, change), runs in sorted(groups.items()):
        text = (
            f"phase {phase!r} is inactive, but its cached artifacts of {runs_phrase(sorted(runs))} were made "
            f"with another configuration ({change}); they are used as they are — activate the phase to recompute"
        )
        log.warning(text)
        warnings.append(text)
    return warnings


def _what_changed(record: ManifestRecord, common: dict[str, Any]) -> str:
    if record.config_fingerprint != common["config_fingerprint"]:
        old, new = record.config, common["config"]
        code = [
            f"{key} {_short(old.get(key))} → {_short(new.get(key))}"
            for key in ("class", "version")
            if old.get(key) != new.get(key)
        ]
        changes = [
            f"{key} {_short(old.get(key))} → {_short(new.get(key))}"
            for key in ("seed", "lineage")
            if old.get(key) != new.get(key)
        ]
        old_cfg, new_cfg = old.get("config", {}), new.get("config", {})
        for key in sorted(set(old_cfg) | set(new_cfg)):
            if old_cfg.get(key) != new_cfg.get(key):
                changes.append(f"{key}: {_short(old_cfg.get(key, '(unset)'))} → {_short(new_cfg.get(key, '(unset)'))}")
        parts = [f"code version changed ({', '.join(code)})"] if code else []
        if changes or not code:
            parts.append("configuration changed (" + (", ".join(changes) or "config() differs") + ")")
        return " and ".join(parts)
    old_run, new_run = record.inputs.get("run_file"), common["inputs"].get("run_file")
    if new_run is not None and old_run != new_run:
        if "checksum" in new_run:
            return "its run file changed (content)"
        return (
            "its run file changed (size or modification time; a copy made without `cp -p` or `rsync -t` "
            "gets new times: copy with those, or identify run files by content with --hash-run-files, "
            'ResumePolicy(run_identity="content") in Python)'
        )
    upstream = common["inputs"].get("upstream", {}).get("phase", "upstream")
    return f"input changed (phase {upstream!r} was recomputed since)"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


class ManifestWriter:
    """A driver listener that records each computed (phase, run) in the manifest as its outcome arrives.

    Completed ones get a full record (artifact checksums come from the worker in
    ``outcome.artifacts``); failed ones a failure record, so ``gyre status``
    can count them. Cached, skipped and loaded (inactive) outcomes write nothing.
    """

    def __init__(
        self, manifest: Manifest, plan: ResumePlan, *, lineage: Sequence[str] = (), parts: PartJournal | None = None
    ) -> None:
        self.manifest = manifest
        #: where the finished parts of split runs are recorded (``None``: not recorded)
        self.parts = parts
        self.plan = plan
        self.lineage = tuple(lineage)
        self.written = 0
        self._recorded: set[tuple[str, int]] = set()

    def task_done(self, outcome: TaskOutcome) -> None:
        """Write the record of ``outcome`` if it was computed here."""
        record = self._record_of(outcome)
        if record is None:
            return
        try:
            self.manifest.write(record)
        except OSError as exc:
            log.error("could not write the manifest record of %s run %d: %s", outcome.phase, outcome.run, exc)
            return
        self._recorded.add((outcome.phase, outcome.run))
        self.written += 1

    def part_done(self, outcome: TaskOutcome) -> None:
        """Record a finished part of a split run, so that an interrupted job can reuse it."""
        if self.parts is None or outcome.status != Status.DONE or outcome.part is None or outcome.events is None:
            return
        record = self._record_of(outcome)
        if record is None:
            return
        index, count = outcome.part
        try:
            self.parts.write_part(record, index=index, count=count, events=outcome.events)
        except OSError as exc:
            log.error("could not record part %d/%d of %s run %d: %s", index, count, outcome.phase, outcome.run, exc)

    def _record_of(self, outcome: TaskOutcome) -> ManifestRecord | None:
        """The manifest record of a computed outcome, ``None`` if it is not to be recorded."""
        if outcome.status not in (Status.DONE, Status.FAILED) or tuple(outcome.lineage) != self.lineage:
            return None
        decision = self.plan.decisions.get((outcome.phase, outcome.run))
        if decision is None or decision.action != "compute":
            return None
        from .. import __version__

        record = ManifestRecord(
            phase=outcome.phase,
            run=outcome.run,
            status="done" if outcome.status == Status.DONE else "failed",
            fingerprint=decision.fingerprint,
            config_fingerprint=decision.config_fingerprint,
            input_fingerprint=decision.input_fingerprint,
            config=decision.config,
            inputs=decision.inputs,
            artifacts={k: dict(v) for k, v in outcome.artifacts.items()} if outcome.status == Status.DONE else {},
            metadata=_plain(dict(outcome.result.metadata)) if outcome.result is not None else {},
            gyre_version=__version__,
            host=outcome.host or host_name(),  # where it ran; the driver's host for outcomes made without one
            worker=outcome.worker,
            started=timestamp(outcome.started),
            finished=timestamp(outcome.finished),
            error=outcome.error,
            parts=[dict(part) for part in outcome.parts],
        )
        if record.status == "done" and not record.artifacts and outcome.result is not None and outcome.result.artifacts:
            log.warning("no artifact facts for %s run %d: it will be recomputed", outcome.phase, outcome.run)
            return None
        return record

    def catch_up(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Write the records an interruption kept :meth:`task_done` from writing (idempotent)."""
        for outcome in outcomes:
            if (outcome.phase, outcome.run) not in self._recorded:
                self.task_done(outcome)


def workspace_seed(workspace: Path, seed: int | None) -> int:
    """The seed of a job: the pipeline's, or — when it has none — the workspace's own.

    A workspace draws its seed once (kept in ``<workspace>/.gyre/seed.json``) so that a
    resumed job continues with the same random streams as the interrupted one.
    """
    if seed is not None:
        return seed
    stored = stored_seed(workspace)
    if stored is not None:
        return stored
    drawn = fresh_seed()
    with atomic_path(_seed_path(workspace)) as temporary:
        temporary.write_text(json.dumps({"seed": drawn}))
    return drawn


def stored_seed(workspace: Path) -> int | None:
    """The seed a workspace drew for itself (see :func:`workspace_seed`), ``None`` before its first job."""
    try:
        stored = json.loads(_seed_path(workspace).read_text())["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stored if isinstance(stored, int) else None


def _seed_path(workspace: Path) -> Path:
    return Path(workspace) / ".gyre" / "seed.json"


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {str(k): repr(v) if not isinstance(v, (int, float, str, bool)) else v for k, v in value.items()}
