"""The entry layer: what ``start_pipeline``, ``generate_assets`` and ``gyre run`` call.

``start`` holds the two public calls; ``job`` runs one job in its named steps (prepare,
plan, run, report); ``watched`` is the run step, where the driver, the watch and the
adaptive host meet. Imports every layer below it; only ``cli`` and ``compat`` import it.
"""

from __future__ import annotations

from .job import run_job
from .start import generate_assets, start_pipeline

__all__ = ["generate_assets", "run_job", "start_pipeline"]
