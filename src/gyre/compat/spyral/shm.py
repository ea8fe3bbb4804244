"""Spyral's POSIX shared memory, honoured on every host: created once per host and job, removed at the end.

A Spyral phase's ``create_shared_data(workspace, handles)`` creates named segments that its
``run`` attaches to by name (``InterpSolverPhase`` uses the fixed name
``interp_shared_mesh``). gyre calls it on each worker host, not in the driver: the first
worker of a job on a host creates the segments under a host-wide file lock; the host's
other workers only register their process id. A small registry in ``/dev/shm`` (the
namespace the segments live in; the temporary directory where there is none) records, per
job and phase, the segments and the worker processes using them. When a worker leaves the
job (:meth:`HostSegments.release`, called at the end of every job, failed or not) its pid
goes; the last one unlinks the segments. Entries whose processes are all dead (a crash)
are removed, with their segments, the next time any job on that host looks.

A segment that exists while a *live* job of another pipeline owns it is a conflict, and so
is one no gyre job owns (a crashed Spyral ``start_pipeline``, another program): neither is
touched; :class:`SharedMemoryConflict` says which and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

from ...errors import GyreError
from ...workspace.atomic import write_text_atomic
from ...workspace.lock import pid_alive

__all__ = ["HostSegments", "SharedMemoryConflict", "claim_segments", "registry_dir", "remove_stale_segments"]

log = logging.getLogger(__name__)

_BASENAME = "gyre-spyral-shm"


class SharedMemoryConflict(GyreError):
    """A shared memory segment a Spyral phase creates already exists on this host."""


def registry_dir() -> Path:
    """Where this host's registry and lock live: ``/dev/shm`` if usable, else the temporary directory."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def _paths(directory: Path | None) -> tuple[Path, Path]:
    base = Path(directory) if directory is not None else registry_dir()
    stem = f"{_BASENAME}-{os.getuid()}" if hasattr(os, "getuid") else _BASENAME
    return base / f"{stem}.json", base / f"{stem}.lock"


@contextmanager
def _locked(directory: Path | None) -> Iterator[Path]:
    import fcntl

    registry, lock = _paths(directory)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield registry
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _load(registry: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(registry.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring an unreadable shared memory registry %s: %s", registry, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _save(registry: Path, entries: dict[str, dict[str, Any]]) -> None:
    write_text_atomic(registry, json.dumps(entries, indent=1, sort_keys=True))


def _unlink(name: str) -> bool:
    try:
        segment = SharedMemory(name=name)
    except FileNotFoundError:
        return False
    segment.close()
    segment.unlink()
    return True


def _prune(entries: dict[str, dict[str, Any]]) -> list[str]:
    """Drop dead pids; remove entries (and unlink their segments) that no live process uses."""
    removed = []
    for key in list(entries):
        entry = entries[key]
        entry["pids"] = [pid for pid in entry.get("pids", []) if pid_alive(int(pid))]
        if not entry["pids"]:
            for name in entry.get("segments", []):
                if _unlink(name):
                    removed.append(name)
            del entries[key]
    return removed


class HostSegments:
    """One worker process's claim on the segments of one (job, phase) on this host; ``release`` when done."""

    def __init__(self, key: str, segments: list[str], directory: Path | None) -> None:
        self.key = key
        self.segments = list(segments)
        self.directory = directory
        self.pid = os.getpid()
        self.released = False

    def release(self) -> None:
        """Give up this process's use; the last process on the host unlinks the segments."""
        if self.released or os.getpid() != self.pid:
            return
        self.released = True
        with _locked(self.directory) as registry:
            entries = _load(registry)
            entry = entries.get(self.key)
            if entry is not None:
                entry["pids"] = [pid for pid in entry.get("pids", []) if pid != self.pid]
            removed = _prune(entries)
            _save(registry, entries)
        if removed:
            log.info("removed shared memory segments %s (%s)", removed, self.key)

    def __repr__(self) -> str:
        return f"<HostSegments {self.key} {self.segments}>"


def remove_stale_segments(directory: Path | None = None) -> list[str]:
    """Unlink the segments of registered jobs whose processes on this host are all dead."""
    with _locked(directory) as registry:
        entries = _load(registry)
        removed = _prune(entries)
        if removed or registry.exists():
            _save(registry, entries)
    if removed:
        log.warning("removed shared memory left by a job that died: %s", removed)
    return removed


def claim_segments(
    key: str,
    create: Callable[[dict[str, SharedMemory]], None],
    *,
    workspace: Path,
    directory: Path | None = None,
) -> HostSegments:
    """Make sure the segments of ``key`` (``"<job>/<phase>"``) exist on this host, creating them once.

    ``create(handles)`` is the phase's ``create_shared_data``; it runs only in the first
    process of the job on this host, under the host lock. The creating process closes its
    mapping at once: the segments live on by name until the last claim is released.

    Raises
    ------
    SharedMemoryConflict
        A segment already exists and this job did not create it.
    """
    with _locked(directory) as registry:
        entries = _load(registry)
        removed = _prune(entries)
        if removed:
            log.warning("removed shared memory left by a job that died: %s", removed)
        entry = entries.get(key)
        if entry is None:
            segments = _create(key, create, entries, workspace)
            entry = {
                "segments": segments,
                "pids": [],
                "workspace": str(workspace),
                "host": socket.gethostname(),
                "created": time.time(),
            }
            entries[key] = entry
            log.info("created shared memory segments %s for %s on %s", segments, key, socket.gethostname())
        if os.getpid() not in entry["pids"]:
            entry["pids"].append(os.getpid())
        _save(registry, entries)
    return HostSegments(key, entry["segments"], directory)


def _create(
    key: str,
    create: Callable[[dict[str, SharedMemory]], None],
    entries: dict[str, dict[str, Any]],
    workspace: Path,
) -> list[str]:
    handles: dict[str, SharedMemory] = {}
    try:
        create(handles)
    except FileExistsError as exc:
        _discard(handles)
        raise SharedMemoryConflict(_conflict_message(key, exc, entries, workspace)) from exc
    except BaseException:
        _discard(handles)
        raise
    for handle in handles.values():
        handle.close()
    return sorted(handle.name.lstrip("/") for handle in handles.values())


def _discard(handles: dict[str, SharedMemory]) -> None:
    for handle in handles.values():
        handle.close()
        with suppress(FileNotFoundError):
            handle.unlink()


def _conflict_message(key: str, exc: FileExistsError, entries: dict[str, dict[str, Any]], workspace: Path) -> str:
    name = str(exc.filename or "").lstrip("/") or "?"
    host = socket.gethostname()
    phase = key.split("/", 1)[-1]
    owners = [e for e in entries.values() if name in e.get("segments", [])]
    if owners:
        entry = owners[0]
        return (
            f"shared memory segment {name!r} of phase {phase!r} is in use on host {host} by another running "
            f"gyre job (workspace {entry.get('workspace')}, worker pids {entry.get('pids')}). The phase uses a "
            "fixed segment name, so two pipelines with it cannot run on one host at the same time: wait for "
            f"the other job to finish or run this one on other hosts (this workspace: {workspace})"
        )
    return (
        f"shared memory segment {name!r} of phase {phase!r} already exists on host {host} and no running gyre "
        "job owns it (left by a crashed Spyral start_pipeline, or in use by one or another program). If nothing "
        f"uses it, remove it (`rm /dev/shm/{name}`) and start again"
    )
