"""Shared read-only data: loaded once per worker process, handed to every run of a phase.

Each worker process keeps one store; entries are keyed by the job's token and the phase,
loaded on the first run that needs them and dropped when the job ends (``clear``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..phase import Phase

__all__ = ["clear_shared", "load_shared"]


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[tuple[str, str], Any] = {}


_STORE = _Store()  # one per process: this is what "loaded once per worker" means


def load_shared(token: str, phase: Phase, workspace: Path) -> Any:
    """The phase's shared data in this process, loading it on first use."""
    key = (token, phase.name)
    with _STORE.lock:
        if key not in _STORE.values:
            _STORE.values[key] = phase.shared_data(workspace)
        return _STORE.values[key]


def clear_shared(token: str) -> int:
    """Drop the job ``token``'s shared data from this process, calling its ``release()`` if any; returns the count."""
    with _STORE.lock:
        keys = [k for k in _STORE.values if k[0] == token]
        dropped = [_STORE.values.pop(key) for key in keys]
    for value in dropped:
        # shared data that holds a resource (shared memory, a file) releases it here
        release = getattr(value, "release", None)
        if callable(release):
            try:
                release()
            except Exception as exc:  # noqa: BLE001 - one failed release must not stop the others
                logging.getLogger(__name__).warning("could not release shared data %r: %s", value, exc)
    return len(keys)
