"""Reading and writing per-run HDF5 files: labelled artifacts, chunked reads, lazy datasets.

The layout gyre writes and reads best is a flat table per run, at the root of the file:

* 1-D datasets along an ``event`` dimension (``energy``, ``n_hits``), optionally with an
  ``event`` coordinate holding the event ids;
* n-D datasets whose first dimension is ``event`` (``trace`` along ``("event", "sample")``);
* variable-length per-event data (point clouds) as a flat ``point`` dimension, plus a
  ``point_count`` variable along ``event`` giving each event's number of points, in order:
  event ``i`` owns points ``offsets[i]:offsets[i + 1]`` with ``offsets = cumsum([0, *point_count])``;
* anything else (histograms, per-run summaries) along its own named dimensions.

:func:`write_artifact` writes that layout with HDF5 dimension scales (the netCDF-4 way), so
``xarray.open_dataset(path, engine="h5netcdf")`` shows the dimension names and coordinates.
:func:`iter_chunks` and :func:`open_run` read a run file of any size in bounded memory.
Files without dimension scales can be read too: their datasets' first axis is taken as
``event`` and other axes are named ``<dataset>_axis<k>``.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..workspace.atomic import atomic_path
from .lazy import H5Slab, lazy_array

__all__ = ["EventChunk", "RowBlocks", "iter_chunks", "open_run", "write_artifact"]

logger = logging.getLogger(__name__)

#: Default upper bound of one chunk's size, summed over the datasets read together.
DEFAULT_CHUNK_BYTES = 64 * 2**20

_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
_NETCDF_ATTRS = ("_Netcdf4Dimid", "_Netcdf4Coordinates", "_NCProperties", "_nc3_strict")
#: the file attribute of a part artifact (a split run's part): ``[first event, stop]`` of its rows
PART_EVENTS_ATTR = "gyre_events"
_HIDDEN_ATTRS = frozenset(("CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", PART_EVENTS_ATTR, *_NETCDF_ATTRS))


def write_artifact(
    path: str | os.PathLike[str],
    data_vars: Mapping[str, tuple[Any, ...]],
    *,
    coords: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    run: int | None = None,
    phase: str | None = None,
    compression: str | None = None,
) -> Path:
    """Write one run's artifact as labelled HDF5 that opens cleanly in xarray.

    Parameters
    ----------
    path
        The file to write, usually ``phase.artifact_path(workspace, run)``. It is written
        under a temporary name and renamed, so it never exists half-written.
    data_vars
        Name → ``(dims, values)`` or ``(dims, values, attrs)``, as in ``xarray.Dataset``:
        ``{"energy": ("event", e), "trace": (("event", "sample"), t, {"units": "ADC"})}``.
    coords
        Dimension name → 1-D values of that dimension's coordinate (``{"event": ids}``).
        Dimensions without a coordinate are written as bare netCDF dimensions.
    attrs
        File attributes (str, numbers or arrays of them).
    run, phase
        Stored as the ``run`` and ``phase`` file attributes.
    compression
        An h5py filter for every dataset (``"gzip"``, ``"lzf"``) or ``None``.

    Returns
    -------
    The path written.
    """
    import h5py

    target = Path(path)
    variables = {name: _normalise_var(name, spec) for name, spec in data_vars.items()}
    coordinates = {dim: np.asarray(values) for dim, values in (coords or {}).items()}
    sizes = _dimension_sizes(variables, coordinates)
    file_attrs = dict(attrs or {})
    if run is not None:
        file_attrs["run"] = int(run)
    if phase is not None:
        file_attrs["phase"] = str(phase)

    with atomic_path(target) as temporary, h5py.File(temporary, "w", track_order=True) as handle:
        scales = {}
        for dimid, (dim, size) in enumerate(sizes.items()):
            if dim in coordinates:
                scale = _create(handle, dim, coordinates[dim], compression)
                scale.make_scale(dim)
            else:
                scale = handle.create_dataset(dim, shape=(size,), dtype="f4")
                scale.make_scale(f"{_NOT_A_VARIABLE}{size:10d}")
            scale.attrs["_Netcdf4Dimid"] = np.int32(dimid)
            scales[dim] = scale
        for name, (dims, values, var_attrs) in variables.items():
            dataset = _create(handle, name, values, compression)
            for axis, dim in enumerate(dims):
                dataset.dims[axis].attach_scale(scales[dim])
            _set_attrs(dataset.attrs, var_attrs)
        _set_attrs(handle.attrs, file_attrs)
    logger.debug("wrote artifact %s (%s)", target, ", ".join(variables))
    return target


def _normalise_var(name: str, spec: tuple[Any, ...]) -> tuple[tuple[str, ...], np.ndarray | RowBlocks, dict[str, Any]]:
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise TypeError(f"data_vars[{name!r}] must be (dims, values) or (dims, values, attrs), got {spec!r}")
    dims = (spec[0],) if isinstance(spec[0], str) else tuple(spec[0])
    values = spec[1] if isinstance(spec[1], RowBlocks) else np.asarray(spec[1])
    if values.ndim != len(dims):
        raise ValueError(
            f"data_vars[{name!r}] has {values.ndim} axes but {len(dims)} dimension names {dims}; give one name per axis"
        )
    return dims, values, dict(spec[2]) if len(spec) == 3 else {}


def _dimension_sizes(
    variables: Mapping[str, tuple[tuple[str, ...], np.ndarray | RowBlocks, dict[str, Any]]],
    coordinates: Mapping[str, np.ndarray],
) -> dict[str, int]:
    sizes: dict[str, int] = {}
    owners: dict[str, str] = {}
    for dim, coordinate in coordinates.items():
        if coordinate.ndim != 1:
            raise ValueError(f"coordinate {dim!r} must be 1-D, got shape {coordinate.shape}")
        sizes[dim], owners[dim] = len(coordinate), f"coordinate {dim!r}"
    for name, (dims, values, _) in variables.items():
        if name in sizes or name in coordinates:
            raise ValueError(f"{name!r} is both a dimension and a data variable; pass it in coords instead")
        for dim, size in zip(dims, values.shape):
            if sizes.setdefault(dim, size) != size:
                raise ValueError(
                    f"dimension {dim!r} has length {sizes[dim]} in {owners[dim]} but {size} in "
                    f"data variable {name!r}; every use of a dimension must have the same length"
                )
            owners.setdefault(dim, f"data variable {name!r}")
    return sizes


@dataclass(frozen=True)
class RowBlocks:
    """A variable given as consecutive blocks of rows, read one at a time while it is written.

    Pass it as the values of a ``write_artifact`` variable to write a large array without
    holding it: ``read(i)`` returns the rows of block ``i`` (``lengths[i]`` of them, in order).
    """

    lengths: tuple[int, ...]
    row_shape: tuple[int, ...]
    dtype: np.dtype
    read: Any  # Callable[[int], np.ndarray]

    @property
    def shape(self) -> tuple[int, ...]:
        """The whole variable's shape."""
        return (sum(self.lengths), *self.row_shape)

    @property
    def ndim(self) -> int:
        """Its number of axes."""
        return 1 + len(self.row_shape)


def _create(handle: Any, name: str, values: np.ndarray | RowBlocks, compression: str | None) -> Any:
    import h5py

    if isinstance(values, RowBlocks):
        string = values.dtype.kind in "UO"
        dtype = h5py.string_dtype() if string else values.dtype
        options = {"compression": compression} if compression and sum(values.lengths) else {}
        dataset = handle.create_dataset(name, shape=values.shape, dtype=dtype, **options)
        start = 0
        for index, length in enumerate(values.lengths):
            if length:
                block = np.asarray(values.read(index))
                dataset[start : start + length] = block.astype(object) if string else block
            start += length
        return dataset
    if values.dtype.kind in "UO":
        return handle.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
    options = {"compression": compression} if compression and values.ndim and values.size else {}
    return handle.create_dataset(name, data=values, **options)


def _set_attrs(target: Any, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        if value is None:
            raise TypeError(f"attribute {key!r} is None; HDF5 attributes need a value (use '' or omit it)")
        target[key] = value


@dataclass(frozen=True)
class VarInfo:
    """What one dataset of a file is, read from its metadata only."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: Mapping[str, Any] = field(default_factory=dict)
    is_coord: bool = False


@dataclass(frozen=True)
class FileInfo:
    """The datasets and attributes of one HDF5 file (no data read)."""

    path: str
    variables: Mapping[str, VarInfo]
    attrs: Mapping[str, Any]
    n_entries: int = 0

    def sizes(self) -> dict[str, int]:
        """Dimension name → length, over every variable."""
        sizes: dict[str, int] = {}
        for var in self.variables.values():
            for dim, size in zip(var.dims, var.shape):
                if sizes.setdefault(dim, size) != size:
                    raise ValueError(
                        f"{self.path}: dimension {dim!r} has length {sizes[dim]} in one dataset but "
                        f"{size} in {var.name!r}; label the axes with dimension scales (gyre.write_artifact)"
                    )
        return sizes


def scan_file(path: str | os.PathLike[str], *, group: str = "/", like: FileInfo | None = None) -> FileInfo:
    """Describe the datasets in ``group`` of an HDF5 file: dims, shapes, dtypes, attributes.

    With ``like`` (the description of a file written the same way, e.g. another run's
    artifact of the same phase), only names, shapes, dtypes and file attributes are read;
    dims and dataset attributes are taken from ``like``. That is several times faster.
    """
    import h5py

    variables: dict[str, VarInfo] = {}
    with h5py.File(path, "r") as handle:
        node = handle[group]
        if like is not None:
            for name, ref in like.variables.items():
                dataset = node.get(name)
                if not isinstance(dataset, h5py.Dataset):
                    variables = {}
                    break
                dtype = np.dtype(object) if h5py.check_string_dtype(dataset.dtype) else dataset.dtype
                variables[name] = VarInfo(name, ref.dims, dataset.shape, dtype, ref.attrs, ref.is_coord)
            if variables and len(node) == like.n_entries:
                return FileInfo(str(path), variables, _attrs_of(node.attrs), len(node))
            variables = {}  # not alike: describe it fully, for a precise error
        for name, dataset in node.items():
            if not isinstance(dataset, h5py.Dataset):
                continue
            is_coord = bool(dataset.is_scale)
            if is_coord and _NOT_A_VARIABLE.encode() in np.asarray(dataset.attrs["NAME"]).tobytes():
                continue
            dims = (name,) if is_coord and dataset.ndim == 1 else _dims_of(name, dataset)
            is_coord = is_coord or dims == (name,)  # e.g. an unlabelled "event" dataset: the event ids
            dtype = np.dtype(object) if h5py.check_string_dtype(dataset.dtype) else dataset.dtype
            variables[name] = VarInfo(name, dims, dataset.shape, dtype, _attrs_of(dataset.attrs), is_coord)
        return FileInfo(str(path), variables, _attrs_of(node.attrs), len(node))


def _dims_of(name: str, dataset: Any) -> tuple[str, ...]:
    dims = []
    for axis, dim in enumerate(dataset.dims):
        scales = list(dim.values())
        if scales:
            dims.append(posixpath.basename(scales[0].name))
        elif dim.label:
            dims.append(dim.label)
        else:
            dims.append("event" if axis == 0 else f"{name}_axis{axis}")
    return tuple(dims)


def _attrs_of(attrs: Any) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if key in _HIDDEN_ATTRS:
            continue
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def rows_per_chunk(row_bytes: int, chunk_bytes: int) -> int:
    """How many rows of ``row_bytes`` fit in ``chunk_bytes`` (at least one)."""
    return max(1, chunk_bytes // max(row_bytes, 1))


# -- bounded-memory reads of one run file ----------------------------------------------------


@dataclass(frozen=True)
class EventChunk:
    """Events ``start:stop`` of a run file: dataset name → the rows of those events."""

    start: int
    stop: int
    arrays: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __len__(self) -> int:
        return self.stop - self.start


def iter_chunks(
    path: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    *,
    chunk_events: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    point_count: str = "point_count",
    events: range | None = None,
) -> Iterator[EventChunk]:
    """Iterate a run file's events in chunks of bounded size, holding one chunk at a time.

    Parameters
    ----------
    path
        The run file (or artifact).
    names
        Datasets to read (paths inside the file are fine). Their first axis is the event
        axis. ``None`` reads every root dataset whose first dimension is ``event``. Datasets
        whose first dimension is ``point`` are variable-length per-event data: each chunk
        holds the points of its events, found with the ``point_count`` dataset.
    chunk_events
        Events per chunk; by default as many as fit in ``chunk_bytes``.
    chunk_bytes
        Upper bound of a chunk's size (all ``names`` together) when ``chunk_events`` is not given.
    events
        Only these events (a ``range`` of step 1, e.g. ``ctx.events`` in a split phase).
        In the part artifact of a split run, whose rows are only its part's events, the
        event numbers are those of the run: the part's own events are found where they are.

    Yields
    ------
    EventChunk
        ``chunk["energy"]`` is the ``energy`` rows of events ``chunk.start:chunk.stop``
        (event numbers of the run).
    """
    import h5py

    with h5py.File(path, "r") as handle:
        if names is None:
            info = scan_file(path)
            names = [v.name for v in info.variables.values() if v.dims[:1] == ("event",)]
            names += [v.name for v in info.variables.values() if v.dims[:1] == ("point",)]
        if not names:
            raise ValueError(f"{path}: no dataset along 'event' to iterate; pass names=[...]")
        datasets = {name: _dataset(handle, path, name) for name in names}
        ragged = {name for name in names if _first_dim(name, datasets[name]) == "point"}
        per_event = [name for name in names if name not in ragged]
        counts = _dataset(handle, path, point_count) if ragged else None
        lengths = {name: datasets[name].shape[0] for name in per_event}
        if counts is not None:
            lengths[point_count] = counts.shape[0]
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{path}: the datasets do not have the same number of events: {lengths}")
        n_events = next(iter(lengths.values()))
        first = int(np.asarray(handle.attrs.get(PART_EVENTS_ATTR, [0, n_events]))[0])  # a part's first event
        rows = _rows_of(path, events, first, n_events)
        if chunk_events is None:
            row = sum(_row_bytes(datasets[n]) for n in per_event)
            row += 8 * bool(ragged)  # the point counts themselves
            if ragged:  # budget the points at the file's mean points per event
                n_points = datasets[next(iter(ragged))].shape[0]
                row += sum(_row_bytes(datasets[n]) for n in ragged) * -(-n_points // max(n_events, 1))
            chunk_events = rows_per_chunk(row, chunk_bytes)
        point = int(np.asarray(counts[: rows.start], dtype=np.int64).sum()) if counts is not None else 0
        for start in range(rows.start, rows.stop, chunk_events):
            stop = min(start + chunk_events, rows.stop)
            arrays = {name: datasets[name][start:stop] for name in per_event}
            if counts is not None:
                chunk_counts = np.asarray(counts[start:stop], dtype=np.int64)
                end = point + int(chunk_counts.sum())
                arrays.update({name: datasets[name][point:end] for name in ragged})
                arrays.setdefault(point_count, chunk_counts)
                point = end
            yield EventChunk(first + start, first + stop, arrays)


def _rows_of(path: Any, events: range | None, first: int, n_events: int) -> range:
    """The rows of a file holding events ``first:first + n_events`` that hold ``events``."""
    if events is None:
        return range(n_events)
    if events.step != 1 or events.start < first or events.stop > first + n_events:
        raise ValueError(
            f"{path}: events {events.start}-{events.stop - 1} asked, but the file holds events "
            f"{first}-{first + n_events - 1} (pass a range of step 1 within them, e.g. ctx.events)"
        )
    return range(events.start - first, events.stop - first)


def _dataset(handle: Any, path: Any, name: str) -> Any:
    import h5py

    node = handle.get(name)
    if not isinstance(node, h5py.Dataset) or node.ndim == 0:
        raise KeyError(f"{path}: no dataset {name!r} with an event axis (found: {', '.join(handle)})")
    return node.asstr() if h5py.check_string_dtype(node.dtype) else node


def _first_dim(name: str, dataset: Any) -> str:
    return _dims_of(name, getattr(dataset, "_dset", dataset))[0]  # (unwrapping .asstr())


def _row_bytes(dataset: Any) -> int:
    dataset = getattr(dataset, "_dset", dataset)
    return int(np.prod(dataset.shape[1:], dtype=np.int64)) * max(dataset.dtype.itemsize, 8)


def open_run(path: str | os.PathLike[str], *, chunk_bytes: int = DEFAULT_CHUNK_BYTES, group: str = "/") -> Any:
    """Open a run file (or artifact) as an ``xarray.Dataset`` of dask arrays, read only when computed.

    Every variable is chunked along its first axis so that one chunk holds at most
    ``chunk_bytes``; reductions (``ds.energy.sum().compute()``, ``np.histogram`` via
    ``dask.array.histogram``) then run in bounded memory.
    """
    import xarray as xr
    from dask.base import tokenize

    info = scan_file(path, group=group)
    info.sizes()  # a clear error for unlabelled datasets of conflicting lengths
    stat = os.stat(path)
    prefix = "" if group.strip("/") == "" else group.strip("/") + "/"
    variables = {}
    for var in info.variables.values():
        slab = H5Slab([str(path)], prefix + var.name, [var.shape[0] if var.shape else 1], var.shape, var.dtype)
        row = int(np.prod(var.shape[1:], dtype=np.int64)) * max(var.dtype.itemsize, 8)
        token = tokenize(str(path), stat.st_mtime_ns, stat.st_size, var.name)
        data = lazy_array(slab, chunk_rows=rows_per_chunk(row, chunk_bytes), token=token)
        variables[var.name] = xr.Variable(var.dims, data, attrs=dict(var.attrs))
    coords = {k: v for k, v in variables.items() if info.variables[k].is_coord}
    data_vars = {k: v for k, v in variables.items() if k not in coords}
    return xr.Dataset(data_vars, coords=xr.Coordinates(coords, indexes={}), attrs=dict(info.attrs))
