"""What the driver asks Slurm about its worker jobs, with Slurm's own commands: nodes, job states, cancelling.

Each function is one ``sinfo``, ``squeue`` or ``scancel`` call that never raises for Slurm's
sake: a command that fails or is missing gives the answer that is safe for the caller.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from collections.abc import Iterable, Sequence

__all__ = ["cancel", "ended_in_queue", "partition_is_this_host", "queue_states"]

log = logging.getLogger(__name__)


def partition_is_this_host(partition: str | None) -> bool:
    """Whether every node of the partition (``None``: all nodes) is this host: the workers then share its loopback."""
    command = ["sinfo", "-h", "-N", "-o", "%N"] + (["-p", partition] if partition else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    nodes = set(done.stdout.split())
    here = {socket.gethostname(), socket.gethostname().split(".")[0]}
    return done.returncode == 0 and bool(nodes) and nodes <= here


def queue_states(ids: Sequence[str]) -> str:
    """What ``squeue`` says of the jobs: state and reason each."""
    if not ids:
        return "none"
    try:
        done = subprocess.run(
            ["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T (%r)"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown (squeue failed: {exc})"
    return "; ".join(done.stdout.split("\n")).strip("; ") or "no longer in the queue"


#: the states of a batch job that is still queued or running
_ALIVE = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SIGNALING"}
)


async def ended_in_queue(ids: list[str]) -> set[str]:
    """Those of the jobs that are no longer queued or running (one ``squeue`` call)."""
    command = ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T"]
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
    except OSError:
        return set()
    if process.returncode != 0 and b"Invalid job id" not in err:  # squeue could not answer: ask again later
        return set()
    alive = {
        job
        for job, state in (line.split()[:2] for line in out.decode().splitlines() if line.strip())
        if state in _ALIVE
    }
    return set(ids) - alive


def cancel(ids: Iterable[str]) -> None:
    """``scancel`` the jobs (those that already ended make it complain, harmlessly)."""
    jobs = sorted(ids)
    if not jobs:
        return
    try:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("could not cancel the worker jobs %s: %s; cancel them with scancel", ", ".join(jobs), exc)
