"""How step results are stored in the cache directory, and found again.

Each result lives at ``<cache>/steps/<function>/<fingerprint>.<ext>`` in the first format that
fits it:

=========  ========================================================  ==========================
``.npy``   a numpy array of numbers, booleans or strings              ``numpy.load``, no pickle
``.h5``    a dict of str → numeric numpy arrays (one dataset each)    ``h5py``; values come back
                                                                      as numpy arrays
``.json``  None, bool, int, float, str, and lists / str-keyed dicts   ``json``
           of those (exactly: a tuple is *not* JSON and is pickled)
``.pkl``   anything else                                              ``pickle``
=========  ========================================================  ==========================

**Pickle files run code when loaded: open only cache directories you trust.**

Next to the result, ``<fingerprint>.meta.json`` records what was stored (step, function, format,
time). It is written last, and both files are written under a temporary name and renamed,
so an interrupted step never leaves something that looks like a complete result.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..workspace.atomic import atomic_path

__all__ = ["find_result", "last_record", "load_result", "result_dir", "store_result", "write_json_atomic"]

_FORMATS = ("npy", "h5", "json", "pkl")


def result_dir(cache_dir: Path, function: str) -> Path:
    """The folder that holds the results of one step function (its name made safe for file systems)."""
    return cache_dir / "steps" / (re.sub(r"[^\w.-]", "_", function).strip(".") or "_")


def store_result(value: Any, *, cache_dir: Path, function: str, fingerprint: str, step: str) -> Path:
    """Write ``value`` in the first fitting format, then its record; returns the result's path."""
    folder = result_dir(cache_dir, function)
    folder.mkdir(parents=True, exist_ok=True)
    fmt = _format_of(value)
    path = folder / f"{fingerprint}.{fmt}"
    _atomic(path, lambda tmp: _WRITERS[fmt](tmp, value))
    meta = {
        "step": step,
        "function": function,
        "fingerprint": fingerprint,
        "format": fmt,
        "file": path.name,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(folder / f"{fingerprint}.meta.json", meta)
    return path


def find_result(cache_dir: Path, function: str, fingerprint: str) -> Path | None:
    """The stored result of this fingerprint, or ``None`` when there is no complete one."""
    folder = result_dir(cache_dir, function)
    try:
        meta = json.loads((folder / f"{fingerprint}.meta.json").read_text())
    except (OSError, ValueError):
        return None
    path = folder / str(meta.get("file", ""))
    if meta.get("format") not in _FORMATS or not path.is_file():
        return None
    return path


def load_result(path: Path) -> Any:
    """Read a result written by :func:`store_result` (pickle only from trusted caches)."""
    fmt = path.suffix.lstrip(".")
    if fmt == "npy":
        return np.load(path, allow_pickle=False)
    if fmt == "h5":
        import h5py

        with h5py.File(path, "r") as h5:
            return {name: h5[name][()] for name in h5.attrs["order"]}
    if fmt == "json":
        return json.loads(path.read_text())
    with path.open("rb") as fh:
        return pickle.load(fh)


def last_record(cache_dir: Path, step: str) -> dict[str, Any] | None:
    """The step's entry in the last run's ``summary.json``, if there is one."""
    try:
        summary = json.loads((cache_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    for record in summary.get("steps", []):
        if record.get("name") == step:
            return dict(record)
    return None


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON under a temporary name, then rename it into place."""
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def _format_of(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufcSU":
        return "npy"
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(k, str) and k and "/" not in k and k != "." for k in value)
        and all(isinstance(v, np.ndarray) and v.dtype.kind in "biufc" for v in value.values())
    ):
        return "h5"
    if _is_json(value):
        return "json"
    return "pkl"


def _is_json(value: Any) -> bool:
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(_is_json(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_json(v) for k, v in value.items())
    return False


def _write_h5(path: Path, value: dict[str, np.ndarray]) -> None:
    import h5py

    with h5py.File(path, "w") as h5:
        for name, array in value.items():
            h5.create_dataset(name, data=array)
        h5.attrs["order"] = list(value)


def _write_pickle(path: Path, value: Any) -> None:
    with path.open("wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _write_npy(path: Path, value: np.ndarray) -> None:
    with path.open("wb") as fh:
        np.save(fh, value, allow_pickle=False)


_WRITERS: dict[str, Callable[[Path, Any], Any]] = {
    "npy": _write_npy,
    "h5": _write_h5,
    "json": lambda path, value: path.write_text(json.dumps(value)),
    "pkl": _write_pickle,
}


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    with atomic_path(path) as temporary:
        write(temporary)
