"""The workspace's directory layout: phase artifact and asset directories, logs, reports."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError
from ..phase import Phase

__all__ = ["LOG_DIR", "REPORT_FILE", "create_workspace", "host_name", "log_dir", "report_path"]

LOG_DIR = "log"
REPORT_FILE = "report.json"


def log_dir(workspace: Path) -> Path:
    """``<workspace>/log``: the driver's and each worker's log files."""
    return Path(workspace) / LOG_DIR


def report_path(workspace: Path) -> Path:
    """``<workspace>/report.json``: the last pipeline report, machine-readable."""
    return Path(workspace) / REPORT_FILE


def create_workspace(workspace: Path, phases: Iterable[Phase]) -> None:
    """Create the workspace, each phase's artifact and asset directories, and the log directory."""
    workspace = Path(workspace)
    try:
        workspace.mkdir(parents=True, exist_ok=True)
        log_dir(workspace).mkdir(exist_ok=True)
        for phase in phases:
            phase.artifact_dir(workspace).mkdir(exist_ok=True)
            phase.asset_dir(workspace).mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the workspace {workspace}: {exc}") from exc
    probe = workspace / f".gyre-write-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"the workspace {workspace} is not writable: {exc}") from exc


@functools.cache
def host_name() -> str:
    """This machine's host name (recorded with every manifest record and lock)."""
    return socket.gethostname()
