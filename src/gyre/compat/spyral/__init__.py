"""Run AT-TPC Spyral analyses on gyre, unchanged (``pip install 'gyre[spyral]'``).

::

    from spyral import Pipeline, ClusterPhase, ...          # unchanged
    from gyre.compat.spyral import start_pipeline           # was: from spyral import start_pipeline

    pipe = Pipeline([...], [...], workspace_path, trace_path)
    report = start_pipeline(pipe, run_min, run_max, n_procs=4)

:class:`SpyralPhase` wraps one ``PhaseLike``; :func:`from_spyral_pipeline` converts a whole
``Pipeline``; :func:`to_spyral_result` / :func:`from_spyral_result` convert results. Spyral
itself is imported only when a Spyral phase runs, never by ``import gyre``.
"""

from __future__ import annotations

from .bridge import KNOWN_ISSUES, StatusQueue
from .phase import SpyralPhase
from .pipeline import from_spyral_pipeline, start_pipeline
from .results import SpyralSchema, from_spyral_result, to_spyral_result
from .shm import HostSegments, SharedMemoryConflict, claim_segments, remove_stale_segments

__all__ = [
    "KNOWN_ISSUES",
    "HostSegments",
    "SharedMemoryConflict",
    "SpyralPhase",
    "SpyralSchema",
    "StatusQueue",
    "claim_segments",
    "from_spyral_pipeline",
    "from_spyral_result",
    "remove_stale_segments",
    "start_pipeline",
    "to_spyral_result",
]
