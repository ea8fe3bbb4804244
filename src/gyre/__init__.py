"""gyre: phase-structured scientific analysis over HDF5 run files, on dask.

Write a :class:`Phase` once, chain phases in a :class:`Pipeline`, and call
:func:`start_pipeline` with a run range: on this process, a local cluster, an MPI
allocation or an existing scheduler.

The package in layers, each importing only the ones before it (``tests/test_architecture.py``
checks it): the core that users write against — ``errors``, ``result``, ``schema``,
``progress``, ``runs``, ``phase`` —; ``workspace`` (the state on disk); ``pipeline``;
``adaptive`` (child requests and the host); ``context`` (what a phase's run gets);
``execution`` (where tasks run); ``io`` (reading and writing run files); ``watch``
(displays and the gyre page); ``report`` (a job's outcome); ``job`` (running one job);
then the other front ends, ``steps`` and ``stream``; and at the top the entry points
``loader``, ``launch`` and ``cli``, and the adapters in ``compat``.
"""

from __future__ import annotations

import os as _os
import signal as _signal
import sys as _sys
import threading as _threading


def _leave_quietly(signum: int, frame: object) -> None:
    # nothing exists yet to clean up, and an exception raised inside an import can come out
    # as another (numpy turns it into an ImportError with a traceback): leave at once
    _sys.stderr.write(f"gyre: interrupted by {_signal.Signals(signum).name} while starting; nothing was run\n")
    _sys.stderr.flush()
    _os._exit(128 + signum)


# The gyre command (and `python -m gyre.cli`): a SIGTERM or SIGINT while this package and its
# dependencies load (a second or more in a just-started batch job, before any job exists)
# ends the process with 128 + the signal and no traceback, instead of Python's death by the
# signal. The command's own handling takes over from its first line; importing gyre into any
# other program changes nothing.
if (
    _sys.argv[0:1]
    and _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] in ("gyre", "-m")
    and _threading.current_thread() is _threading.main_thread()
):
    for _signum in (_signal.SIGTERM, _signal.SIGINT):
        if _signal.getsignal(_signum) in (_signal.SIG_DFL, _signal.default_int_handler):
            _signal.signal(_signum, _leave_quietly)

from .adaptive.host import LineageNode
from .adaptive.lineage import ChildSummary
from .context import ChildRequest, RunContext
from .errors import (
    AssetError,
    BadRunFileError,
    ClusterError,
    ConfigError,
    DeadlineReached,
    GyreError,
    InvalidResultError,
    MissingArtifactError,
    NoRunsError,
    PhaseFailed,
    PipelineInterrupted,
    RunError,
    SchemaMismatchError,
    WorkerLostError,
    WorkspaceLockedError,
)
from .execution import ClientModel, ExecutionModel, LocalModel, SchedulerModel, SyncModel
from .execution.mpi import MPIModel
from .execution.slurm import SlurmModel
from .io.artifacts import EventChunk, iter_chunks, open_run, write_artifact
from .io.dataset import open_artifacts, report_dataset
from .job.costs import CostModel, Prediction
from .job.dryrun import JobPlan, PlannedTask, PlanState
from .job.options import ResumePolicy
from .launch import RunOutcome, debug_task, generate_assets, plan, start_pipeline, to_delayed
from .phase import Phase, Split
from .pipeline import Pipeline
from .progress import ProgressReporter
from .report.model import PipelineReport
from .result import PhaseResult, Status, TaskOutcome
from .runs import RunFile, RunSelection, discover_runs
from .schema import Schema
from .steps import (
    Placeholder,
    SchemaConflictError,
    Step,
    StepDefinitionError,
    StepFunction,
    StepRecord,
    StepResultError,
    Workflow,
    WorkflowReport,
)
from .stream import (
    Stage,
    StageFailed,
    Stream,
    StreamClosed,
    StreamEmpty,
    StreamError,
    StreamFull,
    StreamResult,
)
from .workspace.manifest import Manifest

__version__ = "0.1.0"

__all__ = [
    "AssetError",
    "BadRunFileError",
    "ChildRequest",
    "ChildSummary",
    "ClientModel",
    "ClusterError",
    "ConfigError",
    "CostModel",
    "DeadlineReached",
    "EventChunk",
    "ExecutionModel",
    "GyreError",
    "InvalidResultError",
    "JobPlan",
    "LineageNode",
    "LocalModel",
    "MPIModel",
    "Manifest",
    "MissingArtifactError",
    "NoRunsError",
    "Phase",
    "PhaseFailed",
    "PhaseResult",
    "Pipeline",
    "PipelineInterrupted",
    "PipelineReport",
    "Placeholder",
    "PlanState",
    "PlannedTask",
    "Prediction",
    "ProgressReporter",
    "ResumePolicy",
    "RunContext",
    "RunError",
    "RunFile",
    "RunOutcome",
    "RunSelection",
    "SchedulerModel",
    "Schema",
    "SchemaConflictError",
    "SchemaMismatchError",
    "SlurmModel",
    "Split",
    "Stage",
    "StageFailed",
    "Status",
    "Step",
    "StepDefinitionError",
    "StepFunction",
    "StepRecord",
    "StepResultError",
    "Stream",
    "StreamClosed",
    "StreamEmpty",
    "StreamError",
    "StreamFull",
    "StreamResult",
    "SyncModel",
    "TaskOutcome",
    "WorkerLostError",
    "Workflow",
    "WorkflowReport",
    "WorkspaceLockedError",
    "__version__",
    "debug_task",
    "discover_runs",
    "generate_assets",
    "iter_chunks",
    "open_artifacts",
    "open_run",
    "plan",
    "report_dataset",
    "start_pipeline",
    "to_delayed",
    "write_artifact",
]
