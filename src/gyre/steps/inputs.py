"""The marker a recorded step leaves in its arguments where a dependency's result goes.

Shared by the recording side (``workflow``) and the worker side (``execute``), which
replaces each marker by the dependency's result read from the cache.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Input"]


class Input:
    """Where a dependency's result (or an item of it) goes in a step's arguments."""

    def __init__(self, index: int, keys: tuple[Any, ...]) -> None:
        self.index = index
        self.keys = keys

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("gyre.steps.Input", self.index, self.keys)
