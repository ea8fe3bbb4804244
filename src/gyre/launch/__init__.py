"""The entry layer: what ``start_pipeline``, ``generate_assets`` and ``gyre run`` call.

``start`` holds the two public calls, ``planning`` what they would do (``gyre run
--dry-run``), ``debug`` one task in pdb, ``guard`` the check of a script's ``__main__``
guard; ``job`` runs one job in its named steps (prepare, plan, run, report); ``watched``
is the run step, where the driver, the watch and the adaptive host meet. Imports every
layer below it; only ``cli`` and ``compat`` import it.
"""

from __future__ import annotations

from .debug import debug_task
from .job import run_job
from .planning import plan
from .start import generate_assets, start_pipeline

__all__ = ["debug_task", "generate_assets", "plan", "run_job", "start_pipeline"]
