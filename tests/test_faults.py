"""Faults that once broke a promise, each pinned by a test that drives the real code path."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cloudpickle
import faultphases
import faultsuite
import pytest
from faultphases import KillingSum, gyre_env, wait_for
from faultsuite import DyingWriter, StampedScale, extra_calls, finished_before, recorded, stamped_module
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, calls, make_run_files

from gyre import LocalModel, Pipeline, start_pipeline
from gyre.execution.base import Completed, Engine, ExecutionModel
from gyre.execution.sync import SyncEngine, SyncModel

cloudpickle.register_pickle_by_value(faultphases)
cloudpickle.register_pickle_by_value(faultsuite)


class _BatchEngine(SyncEngine):
    """A SyncEngine that, like a distributed engine, yields a batch it collected before looking again."""

    def completed(self) -> Iterator[Completed]:
        while self._order:
            yield from list(super().completed())


class _BatchModel(ExecutionModel):
    name = "batch"

    @contextmanager
    def open(self) -> Iterator[Engine]:
        yield _BatchEngine(raise_errors=False)


def _pipeline(tmp_path: Path, run_dir: Path, fail_on: tuple[int, ...]) -> Pipeline:
    phases = [ScalePhase(fail_on=fail_on), SumPhase(), StatPhase()]
    return Pipeline(phases, [True, True, True], tmp_path / "ws", run_dir, seed=11)


def test_fail_fast_with_a_collected_batch_still_writes_the_report(tmp_path: Path, run_dir: Path) -> None:
    pipeline = _pipeline(tmp_path, run_dir, fail_on=(6,))
    report = start_pipeline(pipeline, 1, 6, cluster=_BatchModel(), fail_fast=True, fuse=False, disable_display=True)
    assert report.failed_runs == [6]
    records = (tmp_path / "ws/report.json").read_text()
    assert "fail_fast" in records


def test_fail_fast_cancels_fused_runs(tmp_path: Path, run_dir: Path) -> None:
    pipeline = _pipeline(tmp_path, run_dir, fail_on=(6,))
    model = SyncModel(raise_errors=False)
    report = start_pipeline(pipeline, 1, 6, cluster=model, fail_fast=True, fuse=True, disable_display=True)
    assert report.failed_runs == [6]  # the largest run goes first
    fail_fast_skips = [o for o in report.outcomes if o.error and "fail_fast" in o.error]
    assert {o.run for o in fail_fast_skips} == {1, 2, 3, 5}
    assert (tmp_path / "ws/report.json").is_file()


def test_a_buffered_manifest_line_reaches_the_file_without_a_next_record(tmp_path: Path) -> None:
    from gyre.workspace.manifest import Manifest, ManifestRecord

    def record(run: int) -> ManifestRecord:
        return ManifestRecord(
            phase="reco", run=run, status="done", fingerprint="f", config_fingerprint="c", input_fingerprint="i"
        )

    with Manifest(tmp_path, flush_every=0.5) as manifest:
        manifest.write(record(1))  # the first goes out at once
        manifest.write(record(2))  # buffered: no record follows it
        time.sleep(1.0)  # the promised bound
        lines = manifest.journal("reco").read_text().splitlines()  # the file, as a SIGKILL would leave it
        assert [json.loads(line)["run"] for line in lines] == [1, 2]


def test_a_truncated_run_file_is_a_bad_run_file_without_a_schema(tmp_path: Path, run_dir: Path) -> None:
    run_file = run_dir / "run_0003.h5"
    run_file.write_bytes(run_file.read_bytes()[:100])  # truncated

    class UnschemedScale(ScalePhase):
        incoming_schema = None

    phases = [UnschemedScale(), SumPhase(), StatPhase()]
    pipeline = Pipeline(phases, [True, True, True], tmp_path / "ws", run_dir, seed=11)
    report = start_pipeline(pipeline, 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    outcome = report.outcome("scale", 3)
    assert outcome.error_type == "BadRunFileError"
    assert str(run_file) in (outcome.error or "")
    assert report.failed_runs == [3]


def test_a_job_starting_as_the_lock_appears_names_its_holder(tmp_path: Path, monkeypatch) -> None:
    import os

    from gyre.errors import WorkspaceLockedError
    from gyre.workspace.lock import WorkspaceLock

    seen: list[str] = []
    real_link, real_fdopen = os.link, os.fdopen

    def competitor() -> None:  # a second job starting the instant the lock file exists
        if seen:
            return
        seen.append("")
        try:
            WorkspaceLock(tmp_path).acquire()
        except WorkspaceLockedError as exc:
            seen[0] = str(exc)

    def link(*args: object, **kwargs: object) -> None:
        real_link(*args, **kwargs)  # type: ignore[arg-type]
        competitor()

    def fdopen(*args: object, **kwargs: object) -> object:
        handle = real_fdopen(*args, **kwargs)  # type: ignore[call-overload]
        competitor()
        return handle

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "fdopen", fdopen)
    with WorkspaceLock(tmp_path):
        pass
    assert seen and str(os.getpid()) in seen[0], seen
    assert "unknown process" not in seen[0]


# The fault-injection suite: real processes, real faults. Each scenario counts the finished
# results the fault lost and the results the next start recomputed though they were finished;
# 0 and 0 is the pass. The figures are printed per scenario and in the terminal summary.

RUNS = 10
#: every (phase, run) of the toy pipeline over the ``run_dir`` fixture (runs 1-6, 4 absent)
EVERY = {(phase, run) for phase in ("scale", "sum", "stat") for run in (1, 2, 3, 5, 6)}


def _toy(workspace: Path, runs: Path, first: Any = None, second: Any = None) -> Pipeline:
    """scale → sum → stat (or the phases given in their places), seed 3."""
    phases = [first or ScalePhase(), second or SumPhase(), StatPhase()]
    return Pipeline(phases, [True] * 3, workspace, runs, seed=3)


def _gyre_run(module: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", f"--runs=1-{RUNS}", "--no-display", *extra]


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("suite") / "runs"
    make_run_files(runs, list(range(1, RUNS + 1)), events=2000)
    return runs


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """The driver and whatever it started (an orphaned cluster of a killed driver)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _resume(module: Path, workspace: Path) -> dict[str, Any]:
    """Start the same job again (in-process model: quick) and return its report."""
    again = subprocess.run([*_gyre_run(module), "--sync"], env=gyre_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    report: dict[str, Any] = json.loads((workspace / "report.json").read_text())
    return report


def _signalled_driver(tmp_path: Path, runs: Path, *, delay: float, signum: int, when: Callable[[Path], float],
                      launcher: Sequence[str] = (), where: Sequence[str] = ("--procs", "2")
                      ) -> tuple[Path, Path, float, int]:  # fmt: skip
    """Start ``gyre run``, send ``signum`` at ``when(workspace)`` (epoch seconds); return what is needed to count."""
    workspace = tmp_path / "ws"
    module = stamped_module(tmp_path, workspace, runs, delay=delay)
    driver = subprocess.Popen([*launcher, *_gyre_run(module, *where)], env=gyre_env(), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        moment = when(workspace)
        time.sleep(max(0.0, moment - time.time()))
        sent = time.time()
        driver.send_signal(signum)
        code = driver.wait(timeout=60)
    finally:
        _kill_group(driver)
    return workspace, module, sent, code


def _after_three_finished(extra: float) -> Callable[[Path], float]:
    """``extra`` seconds after the first three (phase, run)s finished."""

    def when(workspace: Path) -> float:
        wait_for(lambda: len(finished_before(workspace, time.time() + 1)) >= 3, 90, "three finished phases")
        return time.time() + extra

    return when


def _count_signalled(workspace: Path, module: Path, sent: float, fault_figures: Any, **facts: object) -> None:
    on_disk = recorded(workspace)
    lost = finished_before(workspace, sent - 1.0) - on_disk
    report = _resume(module, workspace)
    assert report["ok"], report
    redone = extra_calls(workspace, on_disk)
    fault_figures(len(lost), redone, finished=len(on_disk), **facts)
    assert not lost, f"finished more than 1 s before the signal, not on disk: {sorted(lost)}"
    assert redone == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_driver_sigkill_at_a_random_moment(tmp_path: Path, many_runs: Path, seed: int, fault_figures: Any) -> None:
    pause = random.Random(seed).uniform(0.0, 3.5)  # the sums take 10 x 0.8 s on 2 workers
    workspace, module, sent, code = _signalled_driver(
        tmp_path, many_runs, delay=0.8, signum=signal.SIGKILL, when=_after_three_finished(pause)
    )
    assert code == -signal.SIGKILL
    _count_signalled(workspace, module, sent, fault_figures, after=f"{pause:.2f}s")


@pytest.mark.slow
def test_driver_sigkill_with_long_tasks_in_flight(tmp_path: Path, many_runs: Path, fault_figures: Any) -> None:
    """The manifest's bound: a (phase, run) finished more than 1 s before a SIGKILL is on disk,
    although no other record arrives meanwhile (every sum takes 6 s)."""

    def when(workspace: Path) -> float:
        wait_for(lambda: len(finished_before(workspace, time.time() + 1)) >= 2, 90, "two finished scales")
        return time.time() + 1.5

    workspace, module, sent, code = _signalled_driver(tmp_path, many_runs, delay=6.0, signum=signal.SIGKILL, when=when)
    assert code == -signal.SIGKILL
    finished = finished_before(workspace, sent - 1.0)
    assert finished and all(phase == "scale" for phase, _ in finished)  # only scales: long sums in flight
    _count_signalled(workspace, module, sent, fault_figures)


@pytest.mark.slow
def test_driver_sigterm(tmp_path: Path, many_runs: Path, fault_figures: Any) -> None:
    workspace, module, sent, code = _signalled_driver(
        tmp_path, many_runs, delay=0.5, signum=signal.SIGTERM, when=_after_three_finished(0.5)
    )
    assert code == 143
    assert json.loads((workspace / "report.json").read_text())["interrupted"] is True
    _count_signalled(workspace, module, sent, fault_figures)


@pytest.mark.slow
@pytest.mark.mpi
def test_sigterm_to_mpiexec(tmp_path: Path, many_runs: Path, fault_figures: Any) -> None:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        message = f"no mpiexec next to {sys.executable} (pip install 'gyre[mpi]')"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    workspace, module, sent, code = _signalled_driver(
        tmp_path, many_runs, delay=0.5, signum=signal.SIGTERM, when=_after_three_finished(0.5),
        launcher=(str(mpiexec), "-n", "4"), where=("--mpi",),
    )  # fmt: skip
    assert code == 143
    _count_signalled(workspace, module, sent, fault_figures)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid-task", "mid-write_artifact"])
def test_worker_sigkill(tmp_path: Path, run_dir: Path, where: str, fault_figures: Any) -> None:
    """The killed task is retried; the run's finished upstream phase is not recomputed."""
    workspace = tmp_path / "ws"
    second = KillingSum(kill_on=(3,), after=1.0) if where == "mid-task" else DyingWriter(kill_on=(3,))
    pipeline = _toy(workspace, run_dir, second=second)
    report = start_pipeline(pipeline, 1, 6, cluster=LocalModel(2, dashboard_address=None), fuse=False,
                            disable_display=True)  # fmt: skip
    assert report.ok, report.render()
    assert calls(workspace, "worker-deaths") == [3] or (workspace / "killed-writer-3").exists()
    leftovers = [p.name for p in workspace.rglob("*.tmp")]
    again = start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)  # sweeps the killed write's temporary
    lost = EVERY - recorded(workspace)
    redone = extra_calls(workspace, EVERY) - (1 if where == "mid-write_artifact" else 0)  # the killed call counted
    fault_figures(len(lost), redone, temporaries_left=len(list(workspace.rglob("*.tmp"))), after_kill=len(leftovers))
    assert not lost and redone == 0
    assert {o.status for o in again.outcomes} == {"cached"}
    assert not list(workspace.rglob("*.tmp"))


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_damaged_artifact(tmp_path: Path, run_dir: Path, damage: str, fault_figures: Any) -> None:
    """Exactly the damaged artifact and its downstream are recomputed."""
    workspace = tmp_path / "ws"
    pipeline = _toy(workspace, run_dir)
    assert start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True).ok
    expected = artifact_bytes(workspace)
    target = next(workspace.glob("sum/run_0002.h5"))
    data = bytearray(target.read_bytes())
    if damage == "corrupted":
        data[-64:] = bytes(64)  # zeros over the end of the dataset
    else:
        del data[len(data) // 2 :]
    target.write_bytes(bytes(data))
    report = start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)
    computed = {(o.phase, o.run) for o in report.outcomes if o.status == "done"}
    redone = extra_calls(workspace, EVERY - {("sum", 2), ("stat", 2)})
    lost = 0 if report.ok and artifact_bytes(workspace) == expected else 1
    fault_figures(lost, redone, recomputed_as_needed=len(computed))
    assert computed == {("sum", 2), ("stat", 2)}
    assert lost == 0 and redone == 0


@pytest.mark.parametrize("schema", [True, False], ids=["schema", "no-schema"])
@pytest.mark.parametrize("damage", ["truncated", "not-hdf5"])
def test_bad_run_file(tmp_path: Path, run_dir: Path, damage: str, schema: bool, fault_figures: Any) -> None:
    run_file = run_dir / "run_0003.h5"
    run_file.write_bytes(run_file.read_bytes()[:100] if damage == "truncated" else b"run 3: not HDF5\n" * 40)
    first = ScalePhase()
    if not schema:
        first.incoming_schema = None  # type: ignore[misc]
    workspace = tmp_path / "ws"
    pipeline = _toy(workspace, run_dir, first)
    report = start_pipeline(pipeline, 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    outcome = report.outcome("scale", 3)
    assert outcome.error_type == "BadRunFileError" and str(run_file) in (outcome.error or ""), outcome.error
    assert report.failed_runs == [3]
    others = {(phase, run) for phase in ("scale", "sum", "stat") for run in (1, 2, 5, 6)}
    lost = others - recorded(workspace)
    start_pipeline(pipeline, 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    redone = extra_calls(workspace, others)
    fault_figures(len(lost), redone)
    assert not lost and redone == 0


def _race(workspace: str, runs: str, barrier: Any, results: Any) -> None:
    """One of two jobs started at the same instant (a forked process)."""
    from gyre.errors import WorkspaceLockedError

    pipeline = _toy(Path(workspace), Path(runs))
    barrier.wait()
    try:
        report = start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)
        results.put(("ran", os.getpid(), int(report.ok)))
    except WorkspaceLockedError as exc:
        results.put(("refused", os.getpid(), str(exc)))


@pytest.mark.slow
def test_two_jobs_started_at_the_same_instant(tmp_path: Path, run_dir: Path, fault_figures: Any) -> None:
    context = multiprocessing.get_context("fork")
    lost = redone = refused = wrong = 0
    for attempt in range(12):
        workspace = tmp_path / f"ws{attempt}"
        barrier, results = context.Barrier(2), context.Queue()
        jobs = [context.Process(target=_race, args=(str(workspace), str(run_dir), barrier, results)) for _ in "ab"]
        for job in jobs:
            job.start()
        outcomes = [results.get(timeout=60) for _ in jobs]
        for job in jobs:
            job.join(timeout=60)
        pids = {pid for _, pid, _ in outcomes}
        for kind, _, detail in outcomes:
            if kind == "refused":
                refused += 1
                wrong += "unknown process" in str(detail) or not any(f"pid {pid}" in str(detail) for pid in pids)
        lost += len(EVERY - recorded(workspace))
        redone += extra_calls(workspace, EVERY)
    fault_figures(lost, redone, starts=24, refused=refused, misleading_messages=wrong)
    assert lost == 0 and redone == 0 and wrong == 0


@pytest.mark.parametrize("holder", ["this-host", "another-host"])
def test_stale_lock(tmp_path: Path, run_dir: Path, holder: str, fault_figures: Any) -> None:
    from gyre.workspace.layout import host_name
    from gyre.workspace.lock import lock_path

    workspace = tmp_path / "ws"
    pipeline = _toy(workspace, run_dir)
    assert start_pipeline(pipeline, 1, 3, cluster="sync", disable_display=True).ok
    before = recorded(workspace)
    if holder == "this-host":
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        facts = {"host": host_name(), "pid": dead.pid, "started": "earlier"}
    else:
        facts = {"host": "node-elsewhere", "pid": 1, "started": "earlier"}
    lock_path(workspace).write_text(json.dumps(facts))
    old = time.time() - 3600  # a silent holder elsewhere: its heartbeat stopped an hour ago
    os.utime(lock_path(workspace), (old, old))
    report = start_pipeline(pipeline, 1, 6, cluster="sync", disable_display=True)
    assert report.ok
    lost = before - recorded(workspace)
    redone = extra_calls(workspace, before)
    fault_figures(len(lost), redone)
    assert not lost and redone == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fused", "unfused", "auto-fused", "4-workers"])
def test_fail_fast(tmp_path: Path, mode: str, client: Any, fault_figures: Any) -> None:
    """The first failure stops the job: report.json is written, every finished result recorded, none redone."""
    count = 120 if mode == "auto-fused" else 12
    runs = tmp_path / "runs"
    make_run_files(runs, list(range(1, count + 1)))  # sizes grow with the run number
    workspace = tmp_path / "ws"
    workspace.mkdir()
    # the largest runs go first: fusion has begun well before run 40, and 39 smaller runs come after it,
    # so some are still to run when it fails, however fast the workers are
    failing = 40 if mode == "auto-fused" else 6
    (workspace / f"fail-{failing}").touch()
    pipeline = _toy(workspace, runs, StampedScale())
    four = {"cluster": LocalModel(4, dashboard_address=None)}
    where: dict[str, Any] = four if mode == "4-workers" else {"client": client}
    fuse = {"fused": True, "unfused": False}.get(mode)
    report = start_pipeline(pipeline, 1, count, fail_fast=True, fuse=fuse, disable_display=True, **where)
    saved = json.loads((workspace / "report.json").read_text())
    assert report.failed_runs == [failing]
    assert saved["records"], "no report.json records"
    done = {(o.phase, o.run) for o in report.outcomes if o.status == "done"}
    skipped = sum(1 for o in report.outcomes if o.error and "fail_fast" in o.error)
    lost = done - recorded(workspace)
    (workspace / f"fail-{failing}").unlink()
    assert start_pipeline(pipeline, 1, count, cluster="sync", disable_display=True).ok
    redone = extra_calls(workspace, done)
    fault_figures(len(lost), redone, completed=len(done), fail_fast_skips=skipped)
    assert skipped > 0 and not lost and redone == 0
