"""The workspace manifest: one provenance record per completed (phase, run), and fingerprints.

Layout: ``<workspace>/.gyre/manifest/<phase>.jsonl``, an append-only journal per phase,
one JSON record per line; the last line of a (phase, run) is its record. Only the driver
writes (it is the single writer; workers send what it needs inside their ``TaskOutcome``),
one line per record, appended as each outcome arrives (a job's driver writes its lines out
at most half a second after they arrive, by a timer, and all of them before the report is
written, see ``Manifest``): a fraction of the cost of a file per record. A crash
mid-append leaves at most a torn last line, which reading
skips with a warning (that (phase, run) is recomputed, its older line, if any, stays
valid). The driver compacts a journal (atomically rewritten with its live records) when
superseded lines outnumber them. Records of older workspaces (``<phase>/run_0007.json``,
one file each) are still read.

A record holds the artifact paths with sizes, modification times and SHA-256 checksums,
the phase's configuration and its fingerprint, the input fingerprint (the run file's
identity for the first phase, the upstream (phase, run)'s fingerprint otherwise), gyre
and phase versions, host, worker, start and end times. Fingerprints are SHA-256 digests
of canonical JSON, so they are the same on every host and in every process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from ..phase import Phase
from ..result import PhaseResult
from .atomic import atomic_path

__all__ = [
    "MANIFEST_FORMAT",
    "Manifest",
    "ManifestRecord",
    "artifact_facts",
    "config_fingerprint",
    "digest",
    "file_checksum",
    "run_file_identity",
    "verify_artifacts",
]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "gyre-manifest/1"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_CHUNK = 1 << 20


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data that is the same in every process (for fingerprints)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__qualname__, **canonical(dataclasses.asdict(value))}
    if isinstance(value, Phase):
        return {"__type__": type(value).__qualname__, **canonical(dict(value.config()))}
    if hasattr(value, "tobytes") and getattr(value, "size", 0) > 64:  # a large array: its digest, not its values
        data = value.tobytes()
        return {
            "array": f"sha256:{hashlib.sha256(data).hexdigest()}",
            "shape": list(value.shape),
            "dtype": str(value.dtype),
        }
    if hasattr(value, "tolist"):  # numpy scalars and small arrays
        return canonical(value.tolist())
    return _ADDRESS.sub("", repr(value))


def digest(value: Any) -> str:
    """The SHA-256 of ``value``'s canonical JSON: a fingerprint stable across hosts and processes."""
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def config_fingerprint(phase: Phase, *, seed: int, lineage: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The fingerprint of what defines a phase's output, and the facts it was made from.

    Those facts are the phase's class (qualified name), ``version``, ``config()``, the
    pipeline seed and the lineage (for adaptive children): changing any of them changes
    the fingerprint. Phases choose what counts by overriding ``Phase.config()``.
    """
    facts = {
        "class": type(phase).__qualname__,
        "version": str(getattr(phase, "version", "1")),
        "config": canonical(dict(phase.config())),
        "seed": seed,
        "lineage": list(lineage),
    }
    split = getattr(phase, "split", None)
    if split is not None:  # its block size fixes its random draws
        facts["split"] = canonical(split)
    return digest(facts), facts


def file_checksum(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes, or of a directory's files (relative names and bytes)."""
    path = Path(path)
    sha = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            sha.update(str(item.relative_to(path)).encode() + b"\0")
            _feed(sha, item)
    else:
        _feed(sha, path)
    return f"sha256:{sha.hexdigest()}"


def _feed(sha: Any, path: Path) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)


def _stat_facts(path: Path) -> tuple[int, int]:
    if path.is_dir():
        files = [p.stat() for p in path.rglob("*") if p.is_file()]
        return sum(s.st_size for s in files), max((s.st_mtime_ns for s in files), default=0)
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def run_file_identity(path: Path, *, content: bool = False) -> dict[str, Any]:
    """What identifies a run file: its name, size and modification time (and checksum if ``content``)."""
    path = Path(path)
    size, mtime_ns = _stat_facts(path)
    identity: dict[str, Any] = {"name": path.name, "size": size, "mtime_ns": mtime_ns}
    if content:
        identity = {"name": path.name, "checksum": file_checksum(path)}
    return identity


def artifact_facts(result: PhaseResult, workspace: Path) -> dict[str, dict[str, Any]]:
    """Name → path (relative to the workspace when inside it), size, mtime and checksum of each artifact.

    Computed on the worker right after the phase succeeded, so checksumming runs in
    parallel and the driver stays cheap per task.
    """
    facts = {}
    for name, path in result.artifacts.items():
        size, mtime_ns = _stat_facts(path)
        facts[name] = {
            "path": _relative(path, workspace),
            "size": size,
            "mtime_ns": mtime_ns,
            "checksum": file_checksum(path),
        }
    return facts


def _relative(path: Path, workspace: Path) -> str:
    absolute, root = os.path.abspath(path), os.path.abspath(workspace)
    if absolute == root or absolute.startswith(root + os.sep):
        return os.path.relpath(absolute, root)
    return absolute


@dataclass(frozen=True)
class ManifestRecord:
    """How one (phase, run) was made: status, fingerprints, artifacts, versions, host and times."""

    phase: str
    run: int
    status: str
    fingerprint: str
    config_fingerprint: str
    input_fingerprint: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    gyre_version: str = ""
    host: str = ""
    worker: str | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    #: for a split run: one summary per part (index, count, first, last, status, seconds, worker);
    #: the record's own times are its merge's, the parts' ``seconds`` add up to its work
    parts: list[dict[str, Any]] = field(default_factory=list)

    def artifact_paths(self, workspace: Path) -> dict[str, Path]:
        """Name → path of each artifact (relative ones resolved against ``workspace``)."""
        return {name: Path(workspace) / fact["path"] for name, fact in self.artifacts.items()}

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data (with the format tag)."""
        data = {"format": MANIFEST_FORMAT, **{name: getattr(self, name) for name in _RECORD_FIELDS}}
        if not self.parts:
            del data["parts"]  # (only split runs have them)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestRecord:
        """Read a record written by :meth:`to_dict`; ``ValueError`` if it is not one."""
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"not a gyre manifest record (format {data.get('format')!r})")
        return cls(**{k: v for k, v in data.items() if k in _RECORD_FIELDS})


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(ManifestRecord))


def verify_artifacts(record: ManifestRecord, workspace: Path, *, policy: str = "checksum") -> str | None:
    """Why ``record``'s artifacts cannot be trusted now, or ``None`` if they can.

    ``policy="checksum"`` re-reads every byte and compares the SHA-256; ``"stat"`` trusts
    an unchanged size and modification time (fast for huge artifacts, blind to edits that
    keep both).
    """
    for name, path in record.artifact_paths(workspace).items():
        fact = record.artifacts[name]
        if not path.exists():
            return f"artifact {name!r} is missing"
        size, mtime_ns = _stat_facts(path)
        if size != fact.get("size"):
            return f"artifact {name!r} changed size"
        if policy == "stat":
            if mtime_ns != fact.get("mtime_ns"):
                return f"artifact {name!r} was modified after it was made"
        elif file_checksum(path) != fact.get("checksum"):
            return f"artifact {name!r} does not match its checksum (corrupted or overwritten)"
    return None


def timestamp(seconds: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC, ``None`` stays ``None``."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


class Manifest:
    """The records of one workspace: an append-only journal per phase under ``<workspace>/.gyre/manifest/``."""

    def __init__(self, workspace: Path, *, flush_every: float = 0.0) -> None:
        """``flush_every``: seconds appended lines may wait in memory before they reach the
        file (0: each at once). A job's driver waits half a second: tens of thousands of
        records cost one write each per batch. A timer writes buffered lines out at most
        ``flush_every`` seconds after they were appended, even when no other record follows,
        so a killed driver loses at most the records of the last ``flush_every`` seconds
        (whose tasks are recomputed). :meth:`close` writes the rest."""
        self.workspace = Path(workspace)
        self.root = self.workspace / ".gyre" / "manifest"
        self.flush_every = flush_every
        self._handles: dict[str, TextIO] = {}  # phase → its journal, open for appending
        self._flushed = time.monotonic()
        self._lines: dict[str, tuple[int, int]] = {}  # phase → (lines, live records) when last read
        self._guard = threading.Lock()  # the flush timer writes from its own thread
        self._timer: threading.Timer | None = None

    def journal(self, phase: str) -> Path:
        """The journal file of ``phase``."""
        return self.root / f"{phase}.jsonl"

    def write(self, record: ManifestRecord) -> Path:
        """Append ``record``; it replaces any older record of its (phase, run)."""
        return self._append(record.phase, record.to_dict())

    def remove(self, phase: str, run: int) -> None:
        """Forget (phase, run)."""
        self._append(phase, {"format": MANIFEST_FORMAT, "phase": phase, "run": run, "removed": True})

    def read(self, phase: str, run: int) -> ManifestRecord | None:
        """The record of (phase, run), ``None`` if there is none or it cannot be read."""
        return self._phase_records(phase).get(run)

    def phases(self) -> list[str]:
        """The phases that have records."""
        if not self.root.is_dir():
            return []
        names = {p.stem for p in self.root.glob("*.jsonl")}
        names.update(p.name for p in self.root.iterdir() if p.is_dir())  # older workspaces
        return sorted(names)

    def records(self, phase: str | None = None) -> Iterator[ManifestRecord]:
        """Every readable record (of one phase, or of all), in phase then run order."""
        for name in [phase] if phase is not None else self.phases():
            records = self._phase_records(name)
            for run in sorted(records):
                yield records[run]

    def load_all(self) -> dict[tuple[str, int], ManifestRecord]:
        """(phase, run) → record, for every readable record."""
        return {(r.phase, r.run): r for r in self.records()}

    def compact(self) -> int:
        """Rewrite the journals read since this object was made whose superseded lines outnumber
        their records, keeping only the records; returns how many lines were dropped.

        Only for the job holding the workspace lock: a rewrite replaces the file, and a writer
        appending to the old one at the same time would lose its lines.
        """
        dropped = 0
        for phase, (lines, live) in list(self._lines.items()):
            if lines <= 2 * live + 16:
                continue
            records = self._phase_records(phase)
            with self._guard:
                handle = self._handles.pop(phase, None)
            if handle is not None:  # it would go on appending to the replaced file
                handle.close()
            with atomic_path(self.journal(phase)) as temporary:
                temporary.write_text("".join(_line(records[run].to_dict()) for run in sorted(records)))
            dropped += lines - len(records)
            self._lines[phase] = (len(records), len(records))
        if dropped:
            log.info("compacted the manifest: %d superseded lines dropped", dropped)
        return dropped

    def flush(self) -> None:
        """Write the appended lines still in memory to their journals."""
        with self._guard:
            for handle in self._handles.values():
                handle.flush()
            self._flushed = time.monotonic()
            self._timer = None

    def close(self) -> None:
        """Flush and close the journals (appending again reopens them)."""
        with self._guard:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            handles, self._handles = self._handles, {}
            for handle in handles.values():
                handle.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _append(self, phase: str, data: dict[str, Any]) -> Path:
        path = self.journal(phase)
        with self._guard:
            handle = self._handles.get(phase)
            if handle is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                _end_with_newline(path)  # a torn last line must not swallow the next record
                handle = self._handles[phase] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            handle.write(_line(data))
            due = time.monotonic() - self._flushed >= self.flush_every
            if not due and self._timer is None:  # the line reaches the file even if no other follows
                self._timer = threading.Timer(self.flush_every, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()
        return path

    def _phase_records(self, phase: str) -> dict[int, ManifestRecord]:
        if phase in self._handles:
            self._handles[phase].flush()
        records: dict[int, ManifestRecord] = {}
        legacy = self.root / phase
        if legacy.is_dir():
            for path in sorted(legacy.glob("run_*.json")):
                try:
                    record = ManifestRecord.from_dict(json.loads(path.read_text()))
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("ignoring unreadable manifest record %s (that run will be recomputed): %s", path, exc)
                    continue
                records[record.run] = record
        path = self.journal(phase)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return records
        lines = 0
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            lines += 1
            try:
                data = json.loads(line)
                if data.get("removed") is True:
                    records.pop(int(data["run"]), None)
                    continue
                record = ManifestRecord.from_dict(data)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning(
                    "ignoring unreadable line %d of the manifest %s (that run will be recomputed): %s",
                    number, path, exc,
                )  # fmt: skip
                continue
            records[record.run] = record
        self._lines[phase] = (lines, len(records))
        return records


def _line(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"


def _end_with_newline(path: Path) -> None:
    try:
        with open(path, "rb+") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
    except FileNotFoundError:
        pass
