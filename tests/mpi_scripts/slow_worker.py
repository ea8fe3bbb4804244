"""A dask worker that takes too long to start, for the worker-timeout test."""

from __future__ import annotations

import asyncio

from distributed import Worker


class SlowWorker(Worker):
    """Sleeps before starting, so it misses the driver's short worker_timeout."""

    async def start_unsafe(self):  # type: ignore[no-untyped-def]
        await asyncio.sleep(60)
        return await super().start_unsafe()
