"""The records of finished parts of split runs, so that an interrupted job resumes a run from its missing parts.

Layout: ``<workspace>/.gyre/parts/<phase>.jsonl``, an append-only journal per phase like the
manifest's (same writer, same torn-line tolerance), one line per finished part: the
(phase, run)'s manifest record (fingerprint, artifacts with checksums, times) plus
``part = [index, count, first event, stop]``. The (phase, run)'s own record, written when
its parts are merged, stays in the manifest; these lines only say which parts of an
unfinished run can be reused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .manifest import MANIFEST_FORMAT, Manifest, ManifestRecord

__all__ = ["PartJournal", "PartKey"]

log = logging.getLogger(__name__)

#: (run, index, count) of a part
PartKey = tuple[int, int, int]


class PartJournal(Manifest):
    """The finished parts of split runs: :meth:`write_part` appends one, :meth:`parts` reads a phase's."""

    def __init__(self, workspace: Path, *, flush_every: float = 0.0) -> None:
        super().__init__(workspace, flush_every=flush_every)
        self.root = self.workspace / ".gyre" / "parts"

    def write_part(self, record: ManifestRecord, *, index: int, count: int, events: range) -> Path:
        """Append the record of part ``index`` of ``count`` (events ``events``) of ``record``'s (phase, run)."""
        return self._append(record.phase, {**record.to_dict(), "part": [index, count, events.start, events.stop]})

    def parts(self, phase: str) -> dict[PartKey, tuple[ManifestRecord, range]]:
        """(run, index, count) → the last record of that part of ``phase``, and its events."""
        if phase in self._handles:
            self._handles[phase].flush()
        path = self.journal(phase)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        found: dict[PartKey, tuple[ManifestRecord, range]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data: dict[str, Any] = json.loads(line)
                index, count, start, stop = (int(v) for v in data.pop("part"))
                record = ManifestRecord.from_dict(data)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("ignoring unreadable line %d of %s (that part will be recomputed): %s", number, path, exc)
                continue
            if data.get("format") == MANIFEST_FORMAT:
                found[(record.run, index, count)] = (record, range(start, stop))
        return found
