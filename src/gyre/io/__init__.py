"""Reading and writing per-run HDF5 files: labelled artifacts, chunked and lazy reading, and a
phase's artifacts over many runs as one lazy xarray dataset.

Runs wherever a phase or a user reads data (workers, the driver, a notebook). Imports the core
modules and ``workspace`` (atomic writes, the report's location).
"""

from __future__ import annotations

from .artifacts import EventChunk, RowBlocks, iter_chunks, open_run, write_artifact
from .dataset import open_artifacts
from .parts import concat_artifacts

__all__ = ["EventChunk", "RowBlocks", "concat_artifacts", "iter_chunks", "open_artifacts", "open_run", "write_artifact"]
