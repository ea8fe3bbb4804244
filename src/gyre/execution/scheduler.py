"""Running on a scheduler someone else started: by client, address or scheduler file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ClusterError
from .base import Engine, ExecutionModel
from .futures import FuturesEngine

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ClientModel", "SchedulerModel"]


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

    ``min_workers`` waits (up to ``timeout`` seconds) until that many workers have joined.
    """

    name = "scheduler"

    def __init__(
        self,
        *,
        address: str | None = None,
        scheduler_file: str | Path | None = None,
        min_workers: int = 1,
        timeout: float = 60.0,
    ) -> None:
        if (address is None) == (scheduler_file is None):
            raise ClusterError("give exactly one of address=... or scheduler_file=...")
        self.address = address
        self.scheduler_file = None if scheduler_file is None else Path(scheduler_file)
        self.min_workers = min_workers
        self.timeout = timeout

    def describe(self) -> str:
        where = self.address if self.address else f"scheduler file {self.scheduler_file}"
        return f"scheduler at {where}"

    @contextmanager
    def open(self) -> Iterator[Engine]:
        from distributed import Client

        if self.scheduler_file is not None and not self.scheduler_file.exists():
            raise ClusterError(
                f"scheduler file {self.scheduler_file} does not exist: start the scheduler first "
                "(e.g. `dask-mpi --scheduler-file ...` or `dask scheduler --scheduler-file ...`)"
            )
        try:
            client = Client(
                self.address,
                scheduler_file=None if self.scheduler_file is None else str(self.scheduler_file),
                timeout=self.timeout,
            )
        except OSError as exc:
            raise ClusterError(f"could not connect to the {self.describe()}: {exc}") from exc
        try:
            try:
                client.wait_for_workers(self.min_workers, timeout=self.timeout)
            except TimeoutError as exc:
                found = len(client.scheduler_info().get("workers", {}))
                raise ClusterError(
                    f"{self.describe()} has {found} workers after {self.timeout:g} s, needs at least {self.min_workers}"
                ) from exc
            yield FuturesEngine(client)
        finally:
            client.close()
