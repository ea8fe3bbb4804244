"""Phases that misbehave on purpose: slow, killing their worker, returning nonsense."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import h5py
import numpy as np
from toyphases import ScalePhase, SumPhase, count_call

from gyre import PhaseResult, RunContext


class SlowSum(SumPhase):
    """SumPhase that takes ``delay`` seconds per run (same artifacts as SumPhase)."""

    def __init__(self, delay: float = 0.3) -> None:
        super().__init__()
        self._delay = delay  # private: not part of config(), so not of the fingerprint

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        time.sleep(self._delay)
        return super().run(payload, ctx)


class PerRunSleep(SumPhase):
    """SumPhase that sleeps ``seconds[run]`` on each run (a cost unrelated to the run's size)."""

    def __init__(self, seconds: dict[int, float]) -> None:
        super().__init__()
        self._seconds = dict(seconds)  # private: not part of config()

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        time.sleep(self._seconds.get(ctx.run, 0.0))
        return super().run(payload, ctx)


class OffsetSum(SumPhase):
    """cumsum + offset: a parameter that changes the output."""

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        self.offset = offset

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        count_call(ctx.workspace, self.name, ctx.run)
        with h5py.File(payload.artifacts["scale"], "r") as handle:
            scaled = handle["scaled"][...]
        with ctx.artifact() as path, h5py.File(path, "w") as out:
            out.create_dataset("cumsum", data=np.cumsum(scaled) + self.offset)
        return PhaseResult({self.name: ctx.artifact_path()}, run=ctx.run)


def kill_worker_once(ctx: RunContext, kill_on: tuple[int, ...], *, always: bool = False, after: float = 0.0) -> None:
    """SIGKILL this worker process on ``kill_on`` runs, ``after`` seconds in: once per run, or every time."""
    if ctx.run not in kill_on:
        return
    marker = Path(ctx.workspace) / f"killed-{ctx.phase}-{ctx.run}"
    if always or not marker.exists():
        time.sleep(after)
        marker.touch()
        count_call(ctx.workspace, "worker-deaths", ctx.run)
        os.kill(os.getpid(), signal.SIGKILL)


class KillingScale(ScalePhase):
    """ScalePhase that kills its own worker process on ``kill_on`` runs: once, or every time."""

    def __init__(self, kill_on: tuple[int, ...] = (), always: bool = False) -> None:
        super().__init__()
        self._kill_on = kill_on
        self._always = always

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        kill_worker_once(ctx, self._kill_on, always=self._always)
        return super().run(payload, ctx)


class KillingSum(SumPhase):
    """SumPhase that kills its own worker process ``after`` seconds into ``kill_on`` runs, once."""

    def __init__(self, kill_on: tuple[int, ...] = (), after: float = 0.0) -> None:
        super().__init__()
        self._kill_on = kill_on
        self._after = after

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        kill_worker_once(ctx, self._kill_on, after=self._after)
        return super().run(payload, ctx)


class NotAResult(SumPhase):
    """Returns a dict for ``bad_on`` runs instead of a PhaseResult."""

    def __init__(self, bad_on: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.bad_on = bad_on

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        result = super().run(payload, ctx)
        return {"oops": 1} if ctx.run in self.bad_on else result  # type: ignore[return-value]


class LostArtifact(SumPhase):
    """Reports success on ``bad_on`` runs but names an artifact it never wrote."""

    def __init__(self, bad_on: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.bad_on = bad_on

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        result = super().run(payload, ctx)
        if ctx.run in self.bad_on:
            return PhaseResult({self.name: ctx.artifact_path("never-written.h5")}, run=ctx.run)
        return result


def pipeline_module(
    directory: Path, workspace: Path, runs: Path, *, delay: float, seed: int = 5, delay_variable: str | None = None
) -> Path:
    """A pipeline file for ``gyre run``: scale → a slow sum → stat, over ``runs``, into ``workspace``.

    With ``delay_variable``, that environment variable (when set) overrides ``delay``; the
    delay is no part of the fingerprint, so a job may resume faster than it began.
    """
    path = directory / "slow_pipeline.py"
    value = f"float(os.environ.get({delay_variable!r}, {delay}))" if delay_variable else repr(delay)
    path.write_text(
        "import os\n"
        "import gyre\n"
        "from faultphases import SlowSum\n"
        "from toyphases import ScalePhase, StatPhase\n"
        f"pipeline = gyre.Pipeline([ScalePhase(), SlowSum({value}), StatPhase()], [True] * 3, {str(workspace)!r}, "
        f"{str(runs)!r}, seed={seed})\n"
    )
    return path


def gyre_env() -> dict[str, str]:
    """The environment for a ``gyre`` subprocess: this gyre and the test helpers importable."""
    import gyre

    paths = [str(Path(gyre.__file__).parents[1]), str(Path(__file__).parent)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}


def wait_for(condition, timeout: float, what: str, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class SignallingSum(SumPhase):
    """Sends ``signum`` to its own process on run ``on`` (once): an interruption at a known point."""

    def __init__(self, on: int, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self._on = on
        self._signum = signum

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        marker = Path(ctx.workspace) / "signalled"
        if ctx.run == self._on and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), self._signum)
            time.sleep(5)  # the handler raises before this ends
        return super().run(payload, ctx)


class JobNotingSum(SlowSum):
    """SlowSum that notes, as it starts each run, the Slurm job it runs in: ``<workspace>/jobs/<run>-<job id>``.

    The note holds the worker's admin tick interval (a setting of ``QUIET_WORKER_CONFIG``).
    """

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        import dask

        jobs = Path(ctx.workspace) / "jobs"
        jobs.mkdir(exist_ok=True)
        note = jobs / f"{ctx.run}-{os.environ.get('SLURM_JOB_ID', 'none')}"
        note.write_text(str(dask.config.get("distributed.admin.tick.interval")))
        return super().run(payload, ctx)
