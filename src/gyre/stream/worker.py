"""What runs inside distributed worker processes: the task of one stage and its per-worker state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .stage import apply_stage

__all__ = ["StageStates", "run_on_worker"]


class StageStates(WorkerPlugin):
    """The values of the stages' ``init`` functions in one worker process, made on first use.

    Registered for the length of one stream, so every stream starts afresh and nothing is
    left on the workers after ``close()``.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def setup(self, worker: Any) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def teardown(self, worker: Any) -> None:
        self._values.clear()

    def value(self, stage: str, init: Callable[[], Any]) -> Any:
        """``init()`` for ``stage``, called once in this process."""
        with self._lock:
            if stage not in self._values:
                self._values[stage] = init()
            return self._values[stage]


def run_on_worker(
    fn: Callable[..., Any], item: Any, init: Callable[[], Any] | None, states: str | None, stage: str
) -> list[Any]:
    """Apply a stage to one item in a worker; ``states`` names this stream's :class:`StageStates`."""
    if init is None or states is None:
        return apply_stage(fn, item)
    plugin = get_worker().plugins[states]
    assert isinstance(plugin, StageStates)
    return apply_stage(fn, item, plugin.value(stage, init))
