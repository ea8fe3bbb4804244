"""An engine on a distributed ``Client``: shared by the local, mpi and scheduler models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .base import Completed, Engine

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["FuturesEngine"]


class FuturesEngine(Engine):
    """Submits tasks as distributed futures and yields them with ``as_completed``."""

    def __init__(self, client: Client) -> None:
        from distributed import as_completed

        self.client = client
        self.dashboard_link = _dashboard_link(client)
        self._pending = as_completed()

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, priority: int = 0) -> Any:
        assert self.client is not None
        future = self.client.submit(fn, *args, key=key, priority=priority, pure=False)
        self._pending.add(future)
        return future

    def completed(self) -> Iterator[Completed]:
        for future in self._pending:
            if future.status == "finished":
                yield Completed(future.key, value=future.result())
            else:
                try:
                    error = future.exception()
                except BaseException as exc:  # noqa: BLE001 - cancelled futures raise here
                    error = exc
                if error is None:  # its result was lost with a dead worker and has been recomputed
                    yield Completed(future.key, value=future.result())
                    continue
                yield Completed(future.key, error=error)

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self.client is not None
        self.client.run(fn, *args)

    @property
    def n_threads(self) -> int:
        assert self.client is not None
        return max(1, sum(self.client.nthreads().values()))

    def cancel(self) -> None:
        assert self.client is not None
        futures = list(self._pending.futures)
        self._pending.clear()
        if futures:
            self.client.cancel(futures)


def _dashboard_link(client: Client) -> str | None:
    try:
        info = client.scheduler_info()
    except Exception:  # noqa: BLE001 - the link is a convenience, never fatal
        return None
    if "dashboard" not in info.get("services", {}):
        return None
    return str(client.dashboard_link)
