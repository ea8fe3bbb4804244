"""The workspace's directory layout: phase artifact and asset directories, logs, reports."""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..phase import Phase

__all__ = [
    "HTML_REPORT_FILE",
    "LOG_DIR",
    "REPORT_FILE",
    "create_workspace",
    "host_name",
    "html_report_path",
    "log_dir",
    "read_report",
    "report_path",
]

LOG_DIR = "log"
REPORT_FILE = "report.json"
HTML_REPORT_FILE = "report.html"


def log_dir(workspace: Path) -> Path:
    """``<workspace>/log``: the driver's and each worker's log files."""
    return Path(workspace) / LOG_DIR


def report_path(workspace: Path) -> Path:
    """``<workspace>/report.json``: the last pipeline report, machine-readable."""
    return Path(workspace) / REPORT_FILE


def html_report_path(workspace: Path) -> Path:
    """``<workspace>/report.html``: the last pipeline report, for a browser."""
    return Path(workspace) / HTML_REPORT_FILE


def read_report(source: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    """The last report as plain data, from ``report.json`` or a workspace that holds one.

    With ``missing_ok`` a missing or unreadable report is ``{}``; otherwise a
    ``FileNotFoundError`` (no report) or ``ConfigError`` (not a report) that names the file.
    """
    path = Path(source)
    if path.is_dir():
        path = report_path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise FileNotFoundError(f"no report at {path}: run a pipeline first, or pass the report.json path") from None
    except (OSError, ValueError) as exc:
        if missing_ok:
            return {}
        raise ConfigError(f"{path} is not a readable gyre report: {exc}") from exc
    if not isinstance(data, dict):
        if missing_ok:
            return {}
        raise ConfigError(f"{path} is not a gyre report (it holds a {type(data).__name__}, not an object)")
    return data


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
