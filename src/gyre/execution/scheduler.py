"""Running on a scheduler someone else started: by client, address or scheduler file."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ClusterError
from .base import Engine, ExecutionModel
from .futures import FuturesEngine
from .security import JobCredentials, credentials_path, load_credentials

if TYPE_CHECKING:
    from distributed import Client, Security

__all__ = ["ClientModel", "SchedulerModel"]

log = logging.getLogger(__name__)


class ClientModel(ExecutionModel):
    """Use a ``distributed.Client`` the caller already holds; it is left open afterwards."""

    name = "client"

    def __init__(self, client: Client) -> None:
        self.client = client

    def describe(self) -> str:
        return f"existing client of {self.client.scheduler.address if self.client.scheduler else '?'}"

    @contextmanager
    def open(self) -> Iterator[Engine]:
        yield FuturesEngine(self.client)


class SchedulerModel(ExecutionModel):
    """Connect to a running scheduler by ``address`` or ``scheduler_file`` (dask-mpi, jobqueue, a shared cluster).

    The scheduler must answer within ``connect_timeout`` seconds, or the model refuses it
    with a message that says so (a scheduler file left by a job that ended or was killed
    is the common cause) instead of waiting. ``min_workers`` then waits (up to ``timeout``
    seconds) until that many workers have joined.

    ``security``: ``None`` uses the TLS credentials that ``gyre cluster`` wrote next to the
    scheduler file (``scheduler-<job>.pem``, mode 0600) when they are there, and plain TCP
    otherwise; a :class:`~gyre.execution.security.JobCredentials` or ``distributed.Security``
    is used as given; ``True`` requires credentials next to the file; ``False`` connects without TLS.
    """

    name = "scheduler"

    def __init__(
        self,
        *,
        address: str | None = None,
        scheduler_file: str | Path | None = None,
        min_workers: int = 1,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        security: Security | JobCredentials | bool | None = None,
    ) -> None:
        if (address is None) == (scheduler_file is None):
            raise ClusterError("give exactly one of address=... or scheduler_file=...")
        if connect_timeout <= 0 or timeout <= 0:
            raise ClusterError("timeout and connect_timeout must be positive numbers of seconds")
        self.address = address
        self.scheduler_file = None if scheduler_file is None else Path(scheduler_file)
        self.min_workers = min_workers
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.security = security
        #: the dashboard's port on the scheduler's host, known once the model is open
        self.dashboard_port: int | None = None

    def describe(self) -> str:
        where = self.address if self.address else f"scheduler file {self.scheduler_file}"
        return f"scheduler at {where}"

    def connection_security(self) -> Security | None:
        """The credentials to connect with, ``None`` for plain TCP (see the class docstring)."""
        if self.security is False:
            return None
        if isinstance(self.security, JobCredentials):
            return self.security.security()
        if self.security is not None and self.security is not True:
            return self.security
        found = None if self.scheduler_file is None else credentials_path(self.scheduler_file)
        if found is not None and found.exists():
            return load_credentials(found).security()
        if self.security is True:
            raise ClusterError(
                f"security=True needs the cluster's TLS credentials, and there are none at {found or 'an address'}: "
                "give them as security=JobCredentials/distributed.Security, or start the cluster with `gyre cluster`, "
                "which writes them next to its scheduler file"
            )
        return None

    def scheduler_address(self) -> str:
        """The scheduler's address, from the file if there is one."""
        if self.address is not None:
            return self.address
        assert self.scheduler_file is not None
        if not self.scheduler_file.exists():
            raise ClusterError(
                f"scheduler file {self.scheduler_file} does not exist: start the scheduler first "
                "(e.g. `gyre cluster --scheduler-file ...` under mpiexec, or `dask scheduler --scheduler-file ...`)"
            )
        try:
            address = json.loads(self.scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError(
                f"scheduler file {self.scheduler_file} holds no scheduler address ({exc}): it was not written by a "
                "dask scheduler, or is still being written"
            ) from exc
        return str(address)

    def _connect(self) -> Client:
        from distributed import Client

        address = self.scheduler_address()
        security = self.connection_security()
        if address.startswith("tls://") and security is None:
            raise ClusterError(
                f"the {self.describe()} speaks TLS ({address}) and no credentials were given: they are kept next to "
                f"the scheduler file by `gyre cluster` ({credentials_path(self.scheduler_file or 'scheduler.json')}); "
                "pass security=... with them"
            )
        try:
            return Client(address, timeout=self.connect_timeout, security=security)
        except OSError as exc:
            stale = (
                f" The file is probably left over from a job that ended or was killed: remove "
                f"{self.scheduler_file} and start the scheduler again (one file per job, like the batch "
                "template's scheduler-$SLURM_JOB_ID.json, avoids this)."
                if self.scheduler_file is not None
                else ""
            )
            raise ClusterError(
                f"the {self.describe()} did not answer at {address} within {self.connect_timeout:g} s ({exc}).{stale}"
            ) from exc

    @contextmanager
    def open(self) -> Iterator[Engine]:
        client = self._connect()
        try:
            try:
                client.wait_for_workers(self.min_workers, timeout=self.timeout)
            except TimeoutError as exc:
                found = len(client.scheduler_info().get("workers", {}))
                raise ClusterError(
                    f"{self.describe()} has {found} workers after {self.timeout:g} s, needs at least {self.min_workers}"
                ) from exc
            self._find_scheduler(client)
            yield FuturesEngine(client)
        finally:
            client.close()

    def _find_scheduler(self, client: Client) -> None:
        """Ask the scheduler for its host name and dashboard port (for the dashboard line and the tunnel)."""
        try:
            self.scheduler_host = str(client.run_on_scheduler(socket.gethostname))
            port = client.scheduler_info().get("services", {}).get("dashboard")
        except (OSError, RuntimeError, ValueError) as exc:  # a scheduler that refuses run_on_scheduler
            log.debug("could not ask the scheduler for its host: %s", exc)
            return
        self.dashboard_port = None if port is None else int(port)

    def dashboard_tunnel_hint(self) -> str | None:
        """On another host than this one, how to reach a dashboard bound to its loopback: an SSH tunnel."""
        if self.scheduler_host is None or self.dashboard_port is None or self.scheduler_host == socket.gethostname():
            return None
        return (
            f"ssh -L 8787:127.0.0.1:{self.dashboard_port} -J <login-node> {self.scheduler_host}, "
            "then open http://localhost:8787/status (and http://localhost:8787/gyre)"
        )
