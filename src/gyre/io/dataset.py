"""Results as data: a phase's artifacts over all runs, and the run × phase report, as xarray.

:func:`open_artifacts` puts every run's artifact of one phase into one lazy
``xarray.Dataset`` (dask arrays: nothing is read until computed, and computing runs on the
dask cluster in use, if any). :func:`report_dataset` turns ``report.json`` into a
``(run, phase)`` table of status, duration and error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..result import STATUSES
from ..runs import artifact_filename, artifact_run
from ..workspace.layout import read_report
from .artifacts import DEFAULT_CHUNK_BYTES, FileInfo, rows_per_chunk, scan_file
from .lazy import H5Slab, lazy_array

__all__ = ["REPORT_STATUSES", "open_artifacts", "report_dataset"]

logger = logging.getLogger(__name__)

#: The outcomes a (phase, run) can have in a report, in the order of ``status_code``.
REPORT_STATUSES = tuple(status.value for status in STATUSES)

_LEFT_OUT = ("failed", "skipped", "missing")


def open_artifacts(
    workspace: str | os.PathLike[str],
    phase: str,
    runs: Iterable[int] | None = None,
    *,
    along: Sequence[str] = ("event", "point"),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Any:
    """Open one phase's artifacts of many runs as one lazy ``xarray.Dataset``.

    Parameters
    ----------
    workspace
        The pipeline's workspace; artifacts are ``<workspace>/<phase>/run_0007.h5``.
    phase
        The phase's name.
    runs
        Run numbers to open; ``None`` = every artifact in the phase's directory.
    along
        Record dimensions whose lengths differ from run to run. If the artifacts have any
        of them, each is concatenated over runs (it must be the first dimension of the
        variables that use it) and labelled with the run of each record: coordinate ``run``
        along the first of them (``event``), ``<dim>_run`` along the others (``point_run``).
        Variables without a record dimension are then stacked along a ``runs`` dimension.
        If the artifacts have none of them, every variable is stacked along a new ``run``
        dimension (all runs must then have the same shapes).
    chunk_bytes
        Upper bound of one dask chunk; a run's artifact is one chunk when it is smaller.

    Returns
    -------
    xarray.Dataset
        The variables, dtypes and attributes of the artifacts, backed by dask arrays. Its
        attributes ``failed_runs``, ``skipped_runs`` and ``missing_runs`` list the runs left
        out (from ``<workspace>/report.json`` when it exists; a run without an artifact
        counts as missing), so a gap is never silent.

    Raises
    ------
    FileNotFoundError
        No run has an artifact.
    ValueError
        The artifacts of different runs do not have the same variables, dims or dtypes.
    """
    import xarray as xr
    from dask.base import tokenize

    directory = Path(workspace) / phase
    statuses = _report_statuses(Path(workspace), phase)
    if runs is None:
        found = [run for p in directory.glob("run_*.h5") if (run := artifact_run(p.name)) is not None]
        wanted = sorted(set(found) | {run for run, status in statuses.items() if status in _LEFT_OUT})
    else:
        wanted = sorted({int(run) for run in runs})
    left_out: dict[str, list[int]] = {status: [] for status in _LEFT_OUT}
    paths: dict[int, str] = {}
    for run in wanted:
        path = directory / artifact_filename(run)
        status = statuses.get(run)
        if status in _LEFT_OUT:
            left_out[str(status)].append(run)
        elif path.is_file():
            paths[run] = str(path)
        else:
            left_out["missing"].append(run)
    if any(left_out.values()):
        logger.warning(
            "phase %r: leaving out %s",
            phase,
            "; ".join(f"{status} runs {r}" for status, r in left_out.items() if r),
        )
    if not paths:
        raise FileNotFoundError(
            f"no artifact of phase {phase!r} to open in {directory} (runs asked: {wanted or 'any'}; "
            f"left out: {left_out}); has the phase run?"
        )

    first_path, *other_paths = paths.values()
    first = scan_file(first_path)
    infos = [first, *(scan_file(path, like=first) for path in other_paths)]
    _check_alike(infos)
    stat_token = tokenize([(p, os.stat(p).st_mtime_ns) for p in paths.values()])
    run_numbers = np.array(list(paths), dtype=np.int64)
    records = [dim for dim in along if any(dim in v.dims for v in first.variables.values())]
    stack_dim = "runs" if records else "run"

    variables: dict[str, Any] = {}
    coord_names: set[str] = set()
    for name, var in first.variables.items():
        record = next((dim for dim in records if dim in var.dims), None)
        token = tokenize(stat_token, name)
        if record is not None:
            if var.dims[0] != record:
                raise ValueError(
                    f"variable {name!r} has the record dimension {record!r} at axis "
                    f"{var.dims.index(record)}, not first: {var.dims}; write it with {record!r} first"
                )
            lengths = [info.variables[name].shape[0] for info in infos]
            shape = (sum(lengths), *var.shape[1:])
            slab = H5Slab(list(paths.values()), name, lengths, shape, var.dtype)
            data = lazy_array(slab, chunk_rows=_chunks(lengths, var, chunk_bytes), token=token)
            variables[name] = xr.Variable(var.dims, data, attrs=dict(var.attrs))
        elif var.is_coord:  # a fixed axis (bins, samples): the same in every run, taken from the first
            slab = H5Slab(list(paths.values())[:1], name, [var.shape[0]], var.shape, var.dtype)
            variables[name] = xr.Variable(
                var.dims, lazy_array(slab, chunk_rows=var.shape[0], token=token), attrs=dict(var.attrs)
            )
        else:
            shape = (len(paths), *var.shape)
            slab = H5Slab(list(paths.values()), name, [1] * len(paths), shape, var.dtype, stack=True)
            data = lazy_array(slab, chunk_rows=1, token=token)
            variables[name] = xr.Variable((stack_dim, *var.dims), data, attrs=dict(var.attrs))
        if var.is_coord:
            coord_names.add(name)

    for index, record in enumerate(records):
        lengths = [info.sizes()[record] for info in infos]
        label = "run" if index == 0 else f"{record}_run"
        labels = _RunLabels(run_numbers, lengths)
        data = lazy_array(
            labels, chunk_rows=variables[_first_with(record, first)].data.chunks[0], token=tokenize(stat_token, label)
        )
        variables[label] = xr.Variable(record, data)
        coord_names.add(label)
    coords = xr.Coordinates({k: variables[k] for k in coord_names}, indexes={})
    data_vars = {k: v for k, v in variables.items() if k not in coord_names}
    attrs = _common_attrs(infos)
    attrs.update(phase=phase, workspace=str(Path(workspace).resolve()))
    attrs.update({f"{status}_runs": runs_ for status, runs_ in left_out.items()})
    dataset = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    return dataset.assign_coords({stack_dim: run_numbers})


def _report_statuses(workspace: Path, phase: str) -> dict[int, str]:
    """Run → status of ``phase`` in the workspace's report, or nothing without a report."""
    report = read_report(workspace, missing_ok=True)
    return {int(r["run"]): str(r["status"]) for r in report.get("records", []) if r.get("phase") == phase}


def _check_alike(infos: Sequence[FileInfo]) -> None:
    first = infos[0]
    for info in infos[1:]:
        if set(info.variables) != set(first.variables):
            raise ValueError(
                f"{info.path} has variables {sorted(info.variables)} but {first.path} has "
                f"{sorted(first.variables)}; every run's artifact of a phase needs the same variables"
            )
        for name, var in info.variables.items():
            ref = first.variables[name]
            if var.dims != ref.dims or var.dtype != ref.dtype:
                raise ValueError(
                    f"variable {name!r} is {var.dtype}{var.dims} in {info.path} but "
                    f"{ref.dtype}{ref.dims} in {first.path}; every run's artifact needs the same dims and dtypes"
                )


def _chunks(lengths: Sequence[int], var: Any, chunk_bytes: int) -> list[int]:
    """Chunk sizes along a record dim: one per run, split where a run exceeds ``chunk_bytes``."""
    limit = rows_per_chunk(int(np.prod(var.shape[1:], dtype=np.int64)) * var.dtype.itemsize, chunk_bytes)
    chunks = []
    for length in lengths:
        full, rest = divmod(length, limit)
        chunks += [limit] * full + ([rest] if rest or not length else [])
    return [c for c in chunks if c] or [0]


def _first_with(dim: str, info: FileInfo) -> str:
    return next(name for name, var in info.variables.items() if var.dims[:1] == (dim,))


class _RunLabels:
    """The run number of every record along a concatenated dimension, computed, not read."""

    def __init__(self, run_numbers: np.ndarray, lengths: Sequence[int]) -> None:
        self.runs = np.asarray(run_numbers, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.shape = (int(self.offsets[-1]),)
        self.dtype = np.dtype(np.int64)
        self.ndim = 1
        self.name = "run"

    def __getitem__(self, key: Any) -> np.ndarray:
        index = np.arange(self.shape[0])[key if isinstance(key, tuple) else (key,)]
        return self.runs[np.searchsorted(self.offsets, index, side="right") - 1]


def _common_attrs(infos: Sequence[FileInfo]) -> dict[str, Any]:
    """Attributes equal in every file (so a per-run ``run`` attribute drops out)."""
    attrs = {k: v for k, v in infos[0].attrs.items() if k != "run"}
    for info in infos[1:]:
        for key in list(attrs):
            if key not in info.attrs or not np.array_equal(np.asarray(info.attrs[key]), np.asarray(attrs[key])):
                del attrs[key]
    return attrs


def report_dataset(source: str | os.PathLike[str] | Mapping[str, Any] | Any) -> Any:
    """The run × phase report as an ``xarray.Dataset``, for tables and plots.

    Parameters
    ----------
    source
        ``report.json``, a workspace directory holding one, the report's dict, or any
        object with a ``to_dict()`` method returning it.

    Returns
    -------
    xarray.Dataset
        Dimensions ``(run, phase)``; variables ``status`` (str, ``""`` where the report
        has no record), ``status_code`` (index into ``REPORT_STATUSES``, -1 = no record),
        ``duration`` (s, NaN where none), ``error`` and ``error_type`` (str), ``worker`` (str), ``started``
        and ``finished`` (UTC ``datetime64``, NaT where none). The report's header fields are the attributes.
    """
    import xarray as xr

    report = _load_report(source)
    records = list(report.get("records", []))
    phases = list(report.get("phases", []))
    phases += sorted({str(r["phase"]) for r in records} - set(phases))
    runs = sorted({int(r["run"]) for r in records} | {int(r) for r in report.get("requested_runs", [])})
    row = {run: i for i, run in enumerate(runs)}
    col = {phase: j for j, phase in enumerate(phases)}
    shape = (len(runs), len(phases))
    status = np.full(shape, "", dtype=object)
    error = np.full(shape, "", dtype=object)
    error_type = np.full(shape, "", dtype=object)
    worker = np.full(shape, "", dtype=object)
    duration, started, finished = (np.full(shape, np.nan) for _ in range(3))
    for record in records:
        at = row[int(record["run"])], col[str(record["phase"])]
        status[at] = str(record.get("status") or "")
        error[at] = str(record.get("error") or "")
        error_type[at] = str(record.get("error_type") or "")
        worker[at] = str(record.get("worker") or "")
        for target, key in ((duration, "duration"), (started, "started"), (finished, "finished")):
            value = record.get(key)
            target[at] = np.nan if value is None else float(value)
    codes = {name: i for i, name in enumerate(REPORT_STATUSES)}
    status_code = np.array([codes.get(s, -1) for s in status.ravel()], dtype=np.int8).reshape(shape)
    dims = ("run", "phase")
    data_vars = {
        "status": (dims, status.astype(str)),
        "status_code": (
            dims,
            status_code,
            {
                "flag_values": np.arange(len(REPORT_STATUSES), dtype=np.int8),
                "flag_meanings": " ".join(REPORT_STATUSES),
                "missing_value": np.int8(-1),
            },
        ),
        "duration": (dims, duration, {"units": "s"}),
        "error": (dims, error.astype(str)),
        "error_type": (dims, error_type.astype(str)),
        "worker": (dims, worker.astype(str)),
        "started": (dims, _datetimes(started)),
        "finished": (dims, _datetimes(finished)),
    }
    header = ("format", "pipeline", "workspace", "seed", "execution", "started", "finished", "wall_seconds")
    attrs = {key: report[key] for key in header if report.get(key) is not None}
    for key in ("requested_runs", "missing_runs", "skipped_runs"):
        attrs[key] = [int(r) for r in report.get(key, [])]
    coords = {"run": np.array(runs, dtype=np.int64), "phase": np.array(phases, dtype=str)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _datetimes(seconds: np.ndarray) -> np.ndarray:
    """Unix times (s, NaN = none) as UTC ``datetime64[ns]`` (NaT = none)."""
    nanoseconds = np.where(np.isnan(seconds), 0, np.round(seconds * 1e9)).astype(np.int64)
    return np.where(np.isnan(seconds), np.datetime64("NaT"), nanoseconds.astype("datetime64[ns]"))


def _load_report(source: Any) -> Mapping[str, Any]:
    if hasattr(source, "to_dict"):
        return dict(source.to_dict())
    if isinstance(source, Mapping):
        return source
    return read_report(Path(source))
