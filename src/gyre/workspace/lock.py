"""The workspace lock: one pipeline at a time per workspace, and stale locks taken over safely.

The lock is the file ``<workspace>/.gyre/lock.json``, created exclusively (``O_EXCL``) and
holding the holder's host, pid, process start time and start time. While held, a thread
refreshes its modification time every ``heartbeat`` seconds. A lock is *stale* when its
holder is known to be gone: on the same host, the pid no longer exists (or belongs to a
newer process); on another host, the heartbeat stopped for ``stale_after`` seconds.
Taking a stale lock over is itself guarded by an exclusive ``lock.json.takeover`` file, so
two starters that both find the same stale lock cannot both win.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import WorkspaceLockedError
from .layout import host_name

__all__ = ["WorkspaceLock", "lock_path", "read_lock"]

log = logging.getLogger(__name__)


def lock_path(workspace: Path) -> Path:
    """``<workspace>/.gyre/lock.json``."""
    return Path(workspace) / ".gyre" / "lock.json"


def read_lock(workspace: Path) -> dict[str, Any] | None:
    """The current holder's facts, or ``None`` if the workspace is not locked (or the file is unreadable)."""
    try:
        data = json.loads(lock_path(workspace).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from the holder."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host is alive (a zombie, dead but not reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by its parent) holds nothing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class WorkspaceLock:
    """Hold a workspace for one pipeline; ``with WorkspaceLock(ws):`` or ``acquire()``/``release()``.

    Raises ``WorkspaceLockedError`` naming the holder (host, pid, start time) when another
    live pipeline holds the workspace.
    """

    def __init__(self, workspace: Path, *, heartbeat: float = 30.0, stale_after: float = 300.0) -> None:
        self.workspace = Path(workspace)
        self.path = lock_path(self.workspace)
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; raise if a live pipeline holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._create():
            holder = read_lock(self.workspace)
            reason = self._stale_reason(holder)
            if reason is None:
                raise WorkspaceLockedError(self._busy_message(holder))
            self._take_over(holder, reason)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="gyre-workspace-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Give the lock back (only if this object still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        holder = read_lock(self.workspace)
        if holder is not None and holder.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    def _facts(self) -> dict[str, Any]:
        return {
            "host": host_name(),
            "pid": os.getpid(),
            "process_start": _process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "started_epoch": time.time(),
            "token": self.token,
        }

    def _create(self) -> bool:
        """Make the lock file appear complete, or not at all: written under a private name,
        then hard-linked to the lock's name, which fails if another job holds it. A competitor
        therefore never reads a lock that is still being written."""
        temporary = self.path.with_name(f".{self.path.name}.{self.token}.tmp")
        temporary.write_text(json.dumps(self._facts()))
        try:
            os.link(temporary, self.path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "w") as handle:
                json.dump(self._facts(), handle)
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def _stale_reason(self, holder: dict[str, Any] | None) -> str | None:
        if holder is None:
            # unreadable: a holder that died between creating and filling it, or one writing now
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return "it vanished"
            return f"it is unreadable and {age:.0f} s old" if age > 10 else None
        pid = int(holder.get("pid", -1))
        if holder.get("host") == host_name():
            if not pid_alive(pid):
                return f"process {pid} no longer exists"
            start = _process_start(pid)
            if holder.get("process_start") and start is not None and start != holder.get("process_start"):
                return f"pid {pid} now belongs to another process"
            return None
        try:
            silent = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return "it vanished"
        if silent > self.stale_after:
            return f"its holder on {holder.get('host')} has not refreshed it for {silent:.0f} s"
        return None

    def _take_over(self, holder: dict[str, Any] | None, reason: str) -> None:
        guard = self.path.with_name(self.path.name + ".takeover")
        try:
            if time.time() - guard.stat().st_mtime > 60:
                guard.unlink(missing_ok=True)  # a taker that died while taking over
        except FileNotFoundError:
            pass
        try:
            descriptor = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError as exc:
            raise WorkspaceLockedError(
                f"workspace {self.workspace} is being taken over by another pipeline right now "
                f"(stale lock {self.path}); try again in a minute"
            ) from exc
        os.close(descriptor)
        try:
            current = read_lock(self.workspace)
            if current != holder:  # the lock changed hands since we looked
                if current is None and self._create():
                    return
                if current is None or self._stale_reason(current) is None:
                    raise WorkspaceLockedError(self._busy_message(read_lock(self.workspace)))
            log.warning("taking over the stale lock of workspace %s: %s (%s)", self.workspace, reason, holder)
            self.path.unlink(missing_ok=True)
            if not self._create():
                raise WorkspaceLockedError(self._busy_message(read_lock(self.workspace)))
        finally:
            guard.unlink(missing_ok=True)

    def _busy_message(self, holder: dict[str, Any] | None) -> str:
        if holder is None:
            who = "an unknown process (the lock file is being written or unreadable)"
        else:
            who = f"host {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('started')}"
        return (
            f"workspace {self.workspace} is in use by another gyre pipeline ({who}); wait for it to finish "
            f"or use another workspace. If that process is gone, delete {self.path}"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except OSError as exc:
                log.warning("could not refresh the workspace lock %s: %s", self.path, exc)
