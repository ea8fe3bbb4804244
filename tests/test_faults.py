"""Faults that once broke a promise, each pinned by a test that drives the real code path."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from toyphases import ScalePhase, StatPhase, SumPhase

from gyre import Pipeline, start_pipeline
from gyre.execution.base import Completed, Engine, ExecutionModel
from gyre.execution.sync import SyncEngine, SyncModel


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
