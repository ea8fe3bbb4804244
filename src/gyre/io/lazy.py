"""Lazy arrays over HDF5 datasets: dask arrays that read a file only when a chunk is computed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["H5Slab", "lazy_array"]


class H5Slab:
    """A lazily read array over one dataset in one or more files, laid end to end.

    Along axis 0 it is the files' datasets concatenated (``stack=False``) or stacked as a
    new axis (``stack=True``). It holds only paths, so it pickles to dask workers; each
    ``[...]`` opens the files it needs, reads, and closes them.
    """

    def __init__(
        self,
        paths: Sequence[str],
        name: str,
        lengths: Sequence[int],
        shape: tuple[int, ...],
        dtype: np.dtype,
        *,
        stack: bool = False,
    ) -> None:
        self.paths = list(paths)
        self.name = name
        self.stack = stack
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if self.ndim == 0:
            return self._read(0, ())
        first, rest = (key[0] if key else slice(None)), tuple(key[1:])
        if not isinstance(first, slice) or first.step not in (None, 1):
            raise TypeError(f"only contiguous slices along axis 0 can be read, got {first!r}")
        start, stop, _ = first.indices(self.shape[0])
        parts = []
        lo = max(int(np.searchsorted(self.offsets, start, side="right")) - 1, 0)
        for i in range(lo, int(np.searchsorted(self.offsets, stop, side="left"))):
            begin, end = int(self.offsets[i]), int(self.offsets[i + 1])
            if self.stack:
                parts.append(self._read(i, rest)[np.newaxis])
            elif end > begin:
                rows = slice(max(start, begin) - begin, min(stop, end) - begin)
                parts.append(self._read(i, (rows, *rest)))
        if not parts:
            everything = (slice(None), *rest)
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)[everything]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _read(self, index: int, key: tuple[Any, ...]) -> np.ndarray:
        import h5py

        with h5py.File(self.paths[index], "r") as handle:
            dataset = handle[self.name]
            if h5py.check_string_dtype(dataset.dtype):
                dataset = dataset.asstr()
            return np.asarray(dataset[key] if key else dataset[()], dtype=self.dtype)


def lazy_array(slab: Any, *, chunk_rows: int | Sequence[int], token: str) -> Any:
    """A dask array over ``slab`` (an :class:`H5Slab` or alike), chunked along axis 0 only."""
    import dask.array as da

    if slab.ndim == 0:
        chunks: Any = ()
    elif isinstance(chunk_rows, int):
        chunks = (chunk_rows, *slab.shape[1:])
    else:
        chunks = (tuple(chunk_rows), *slab.shape[1:])
    meta = np.empty((0,) * slab.ndim, dtype=slab.dtype)
    return da.from_array(slab, chunks=chunks, name=f"h5-{slab.name}-{token}", fancy=False, meta=meta)
