"""The entry layer: what ``start_pipeline``, ``generate_assets`` and ``gyre run`` call.

``start`` holds the two public calls; ``job`` runs one job in its named steps (prepare,
plan, run, report); ``watched`` is the run step, where the driver, the watch and the
adaptive host meet; ``delayed`` gives a job's run chains as ``dask.delayed`` objects
(``to_delayed``). Imports every layer below it; only ``cli`` and ``compat`` import it.
"""

from __future__ import annotations

from .delayed import RunOutcome, to_delayed
from .job import run_job
from .start import generate_assets, start_pipeline

__all__ = ["RunOutcome", "generate_assets", "run_job", "start_pipeline", "to_delayed"]
