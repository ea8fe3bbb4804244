"""The exceptions gyre raises, in one tree.

::

    GyreError                     every error gyre raises on purpose
    ├── ConfigError               a pipeline, run range or option that cannot work
    │   └── NoRunsError           a run range in which no run file exists
    ├── SchemaMismatchError       two consecutive phases whose schemas do not fit
    ├── AssetError                a phase's create_assets returned False or raised
    ├── ClusterError              an execution model that could not start or connect
    ├── WorkspaceLockedError      another live pipeline holds the workspace (names host, pid, start)
    └── RunError                  one (phase, run) could not be completed
        ├── PhaseFailed           the phase's own code raised
        ├── MissingArtifactError  an inactive phase's cached artifact does not exist
        ├── InvalidResultError    a phase returned something that is not a usable PhaseResult
        └── BadRunFileError       a run file that is unreadable or lacks a needed dataset

A ``RunError`` never escapes ``start_pipeline``: it fails that run's chain and is
recorded in the report. The others stop the pipeline before any run is computed.

``PipelineInterrupted`` is no ``GyreError`` but a ``KeyboardInterrupt``: SIGINT or SIGTERM
stopped the job, after its report was written (``.report``, ``.signum``). Its subclass
``DeadlineReached`` says the job stopped at its deadline (``deadline=``, ``--walltime``,
the Slurm job's end): resumable, exit status 3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

__all__ = [
    "AssetError",
    "BadRunFileError",
    "ClusterError",
    "ConfigError",
    "DeadlineReached",
    "GyreError",
    "InvalidResultError",
    "MissingArtifactError",
    "NoRunsError",
    "PhaseFailed",
    "PipelineInterrupted",
    "RunError",
    "SchemaMismatchError",
    "WorkspaceLockedError",
]


class GyreError(Exception):
    """Base class of every error gyre raises on purpose."""


class ConfigError(GyreError):
    """A pipeline, run range or option that cannot work as given."""


class NoRunsError(ConfigError):
    """A run range in which no run file exists."""


class SchemaMismatchError(GyreError):
    """Two consecutive phases whose schemas do not fit together."""

    def __init__(self, message: str, *, producer: str, consumer: str) -> None:
        super().__init__(message)
        self.producer = producer
        self.consumer = consumer


class AssetError(GyreError):
    """A phase could not build its assets."""

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class ClusterError(GyreError):
    """An execution model that could not start, connect or shut down."""


class WorkerLostError(ClusterError):
    """The workers that ran a task died, as many times as the scheduler allows (out of memory, a crash)."""


class WorkspaceLockedError(GyreError):
    """Another pipeline that is still alive holds the workspace."""


class PipelineInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a pipeline; finished work is kept and the report is written.

    ``signum`` is the signal, ``report`` the ``PipelineReport`` so far (``None`` if the
    signal came before any run was submitted).
    """

    def __init__(self, signum: int, report: object | None = None) -> None:
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.report = report
        #: set when the code that stops the job has the exception (see :meth:`take`)
        self.taken: threading.Event | None = None

    def take(self) -> None:
        """Say that the job is stopping on this exception, so that gyre does not raise it again.

        A signal's exception can be swallowed where it lands (a weakref callback during garbage
        collection); ``gyre.job.interrupt`` raises it again until it is taken.
        """
        if self.taken is not None:
            self.taken.set()

    @property
    def exit_code(self) -> int:
        """The conventional exit status: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


#: the exit status of a job that stopped at its deadline and can be resumed by running it again
DEADLINE_EXIT_CODE = 3


class DeadlineReached(PipelineInterrupted):
    """The job stopped at its deadline: finished work is kept, the report is written, the rest is left.

    Raised by ``start_pipeline`` when the deadline's margin came while (phase, run)s were
    running (they are cancelled), or when (phase, run)s were not started because they were
    predicted to end after it. ``report`` is the report so far (``interrupted`` is true),
    ``deadline`` the deadline (epoch seconds). Running the same job again resumes it; the
    ``gyre`` command exits with ``DEADLINE_EXIT_CODE`` (3) so a batch script can resubmit itself.
    """

    def __init__(self, message: str, *, deadline: float, report: object | None = None) -> None:
        import signal

        super().__init__(signal.SIGALRM, report)
        self.args = (message,)
        self.deadline = deadline

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def exit_code(self) -> int:
        """``DEADLINE_EXIT_CODE`` (3): stopped at the deadline, resumable."""
        return DEADLINE_EXIT_CODE


class RunError(GyreError):
    """One (phase, run) could not be completed; recorded in the report."""

    def __init__(self, message: str, *, phase: str, run: int) -> None:
        super().__init__(message)
        self.phase = phase
        self.run = run

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_run_error, (type(self), str(self), self.phase, self.run))


def _rebuild_run_error(cls: type[RunError], message: str, phase: str, run: int) -> RunError:
    return cls(message, phase=phase, run=run)


class PhaseFailed(RunError):
    """The phase's own ``run`` raised; the original exception is the ``__cause__``."""


class MissingArtifactError(RunError):
    """An inactive (cached) phase's artifact does not exist."""


class InvalidResultError(RunError):
    """A phase returned something that is not a usable ``PhaseResult``."""


class BadRunFileError(RunError):
    """A run file that cannot be read or lacks a dataset the first phase needs."""
