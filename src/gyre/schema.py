"""Schemas: what a phase takes and gives, checked before any compute."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

__all__ = ["Schema"]


@dataclass(frozen=True)
class Schema:
    """The datasets a phase takes or gives: name → numpy dtype (``None`` = any dtype).

    ``Schema({"cloud": "float64", "event": "int64"})``. Two consecutive phases fit when
    every dataset the consumer takes is given by the producer with the same dtype.
    """

    datasets: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        normalised = {
            str(name): (None if dtype is None else np.dtype(dtype).name) for name, dtype in dict(self.datasets).items()
        }
        object.__setattr__(self, "datasets", MappingProxyType(normalised))

    def differences(self, consumer: Schema) -> list[str]:
        """What ``consumer`` needs that this (producer) schema does not give; empty if it fits."""
        problems = []
        for name, dtype in consumer.datasets.items():
            if name not in self.datasets:
                given = ", ".join(sorted(self.datasets)) or "nothing"
                problems.append(f"dataset {name!r} is needed but not given (given: {given})")
                continue
            given_dtype = self.datasets[name]
            if dtype is not None and given_dtype is not None and dtype != given_dtype:
                problems.append(f"dataset {name!r} is given as {given_dtype} but needed as {dtype}")
        return problems

    def file_differences(self, path: Path) -> list[str]:
        """What this schema needs that the HDF5 file at ``path`` lacks; empty if it fits."""
        import h5py

        problems = []
        with h5py.File(path, "r") as handle:
            for name, dtype in self.datasets.items():
                node = handle.get(name)
                if not isinstance(node, h5py.Dataset):
                    problems.append(f"dataset {name!r} is missing")
                elif dtype is not None and node.dtype.name != dtype:
                    problems.append(f"dataset {name!r} is {node.dtype.name}, needed {dtype}")
        return problems

    def __bool__(self) -> bool:
        return bool(self.datasets)

    def __reduce__(self) -> tuple[object, ...]:
        return (Schema, (dict(self.datasets),))
