"""Function steps: turn plain functions into a cached workflow without writing Phase classes.

::

    wf = Workflow("calibration", "cache/")

    @wf.step
    def simulate(n: int, seed: int) -> np.ndarray: ...

    @wf.step
    def fit(spectrum: np.ndarray) -> dict: ...

    fitted = fit(simulate(1000, seed=1))   # records two lazy steps, computes nothing
    print(wf.describe())                   # levels derived from the dependencies
    wf.run(cluster="local", n_procs=2)     # computes what is not cached yet
    wf.get_result(fitted)                  # reads the cached result

Modules: :mod:`.workflow` (recording the graph), :mod:`.inputs` (where a dependency's result
goes), :mod:`.execute` (running it and the report; it reads the workflow through protocols, so
it does not import :mod:`.workflow`), :mod:`.fingerprint` (cache keys), :mod:`.storage` (result
formats on disk), :mod:`.errors`.
"""

from __future__ import annotations

from .errors import SchemaConflictError, StepDefinitionError, StepResultError
from .execute import StepRecord, WorkflowReport
from .workflow import Placeholder, Step, StepFunction, Workflow

__all__ = [
    "Placeholder",
    "SchemaConflictError",
    "Step",
    "StepDefinitionError",
    "StepFunction",
    "StepRecord",
    "StepResultError",
    "Workflow",
    "WorkflowReport",
]
