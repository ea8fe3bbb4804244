"""The entry layer: what ``start_pipeline``, ``generate_assets`` and ``gyre run`` call.

``start`` holds the two public calls, ``planning`` what they would do (``gyre run
--dry-run``), ``debug`` one task in pdb, ``guard`` the check of a script's ``__main__``
guard; ``job`` runs one job in its named steps (prepare, plan, run, report); ``watched``
is the run step, where the driver, the watch and the adaptive host meet; ``delayed`` gives
a job's run chains as ``dask.delayed`` objects (``to_delayed``). Imports every layer below
it; only ``cli`` and ``compat`` import it.
"""

from __future__ import annotations

from .debug import debug_task
from .delayed import RunOutcome, to_delayed
from .job import run_job
from .planning import plan
from .start import generate_assets, start_pipeline

__all__ = ["RunOutcome", "debug_task", "generate_assets", "plan", "run_job", "start_pipeline", "to_delayed"]
