"""Atomic writes: a file under its final name is always complete.

Every file gyre writes that must not look complete before it is (artifacts, the manifest's
compacted journals, reports, the seed, the steps' cache, the Spyral shared-memory registry)
goes through :func:`atomic_path`: the bytes go to a temporary name beside the final one,
which is renamed over it only when the write succeeded. A task killed mid-write leaves
only a temporary, named by :func:`temporary_name`; :func:`sweep_temporaries` removes exactly
those names at the next start.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "is_temporary", "sweep_temporaries", "temporary_name", "write_text_atomic"]

log = logging.getLogger(__name__)

_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def temporary_name(final: Path) -> Path:
    """A fresh temporary path beside ``final``: ``.<name>.<12 hex>.tmp``."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")


def is_temporary(path: Path) -> bool:
    """Whether ``path``'s name is one :func:`temporary_name` makes."""
    return bool(_TEMPORARY.match(Path(path).name))


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    An interrupted or failing write leaves no file at ``final`` (and removes its temporary),
    so a file under its final name is always complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(final)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written to {temporary} for {final}")
        os.replace(temporary, final)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text_atomic(final: Path, text: str) -> Path:
    """Write ``text`` to ``final`` atomically (UTF-8); returns ``final``."""
    with atomic_path(final) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(final)


def sweep_temporaries(directories: Iterable[Path]) -> int:
    """Delete the temporaries that killed writers left in ``directories``; returns how many.

    Only safe while holding the workspace lock (no other job writes there).
    """
    removed = 0
    for directory in directories:
        for path in Path(directory).glob(".*.tmp"):
            if is_temporary(path):
                path.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d temporary files left by interrupted writes", removed)
    return removed
