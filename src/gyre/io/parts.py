"""The part artifacts of a split run: marking which events a part holds, and merging parts into one.

A split phase's part writes its artifact like a whole run's, with only its events as rows.
The worker marks each part's HDF5 file with the events it holds (``gyre_events``, hidden
from readers), so that :func:`gyre.iter_chunks` given the run's event numbers finds them in
a part as in a whole run. :func:`concat_artifacts` is the default merge: the parts' variables
along ``event`` (and the per-event points along ``point``) end to end, everything else from
the first part.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import PART_EVENTS_ATTR, RowBlocks, scan_file, write_artifact

__all__ = ["CONCAT_DIMS", "concat_artifacts", "is_hdf5", "mark_part"]

log = logging.getLogger(__name__)

#: the dimensions along which parts are joined end to end
CONCAT_DIMS = ("event", "point")


def is_hdf5(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an HDF5 file (its signature, not its name)."""
    import h5py

    return Path(path).is_file() and bool(h5py.is_hdf5(path))


def mark_part(path: str | os.PathLike[str], events: range) -> None:
    """Record in a part's HDF5 artifact that its rows are events ``events`` of the run."""
    import h5py

    with h5py.File(path, "a") as handle:
        handle.attrs[PART_EVENTS_ATTR] = np.array([events.start, events.stop], dtype=np.int64)


def concat_artifacts(
    parts: Sequence[str | os.PathLike[str]], target: str | os.PathLike[str], *, compression: str | None = None
) -> Path:
    """Write ``target`` as the parts' artifacts joined along ``event`` and ``point``, in the given order.

    Every part must hold the same variables with the same dimensions (written with
    :func:`gyre.write_artifact`, or labelled alike); variables along other dimensions, and
    the file attributes, are taken from the first part.

    Raises
    ------
    ValueError
        No parts, or parts that do not hold the same variables and dimensions (the message
        names the part and the variable).
    """

    if not parts:
        raise ValueError(f"no part artifacts to merge into {target}")
    infos = [scan_file(parts[0])]
    infos += [scan_file(path, like=infos[0]) for path in parts[1:]]
    first = infos[0]
    for path, info in zip(parts[1:], infos[1:]):
        for name, var in first.variables.items():
            other = info.variables.get(name)
            if other is None or other.dims != var.dims or other.shape[1:] != var.shape[1:]:
                found = "missing" if other is None else f"dims {other.dims}, shape {other.shape}"
                raise ValueError(
                    f"part artifact {path} cannot be joined to {parts[0]}: variable {name!r} has "
                    f"dims {var.dims}, shape {var.shape} in the first part but is {found} here "
                    "(every part must write the same variables; or define merge(parts, ctx) on the phase)"
                )
    coords: dict[str, Any] = {}
    data_vars: dict[str, tuple[Any, ...]] = {}
    for name, var in first.variables.items():
        joined = bool(var.dims) and var.dims[0] in CONCAT_DIMS
        if var.is_coord and var.dims == (name,):
            coords[name] = np.concatenate([_read(path, name) for path in parts]) if joined else _read(parts[0], name)
        elif joined:  # written part after part: one part's rows in memory at a time
            lengths = tuple(info.variables[name].shape[0] for info in infos)
            blocks = RowBlocks(lengths, tuple(var.shape[1:]), var.dtype, functools.partial(_read_part, parts, name))
            data_vars[name] = (var.dims, blocks, dict(var.attrs))
        else:
            data_vars[name] = (var.dims, _read(parts[0], name), dict(var.attrs))
    written = write_artifact(target, data_vars, coords=coords, attrs=dict(first.attrs), compression=compression)
    log.debug("merged %d parts into %s", len(parts), target)
    return written


def _read(path: str | os.PathLike[str], name: str) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as handle:
        dataset = handle[name]
        if h5py.check_string_dtype(dataset.dtype):
            return np.asarray(dataset.asstr()[...], dtype=object)
        return np.asarray(dataset[...])


def _read_part(parts: Sequence[str | os.PathLike[str]], name: str, index: int) -> np.ndarray:
    return _read(parts[index], name)
