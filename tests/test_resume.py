"""Resume: cached (phase, run)s, changed configurations, corrupted artifacts, bad input, provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cloudpickle
import faultphases
import h5py
import pytest
from faultphases import LostArtifact, NotAResult, OffsetSum
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes, calls

from gyre import ConfigError, Manifest, Pipeline, ResumePolicy, SyncModel, start_pipeline
from gyre.cli import main
from gyre.workspace.manifest import ManifestRecord

cloudpickle.register_pickle_by_value(faultphases)

SYNC = SyncModel(raise_errors=False)


def make(tmp_path: Path, run_dir: Path, *, name="ws", scale=None, middle=None, active=(True, True, True), seed=11):
    phases = [scale or ScalePhase(), middle or SumPhase(), StatPhase()]
    return Pipeline(phases, list(active), tmp_path / name, run_dir, seed=seed)


artifacts = artifact_bytes


def statuses(report, phase):
    return {run: report.status(phase, run) for run in report.runs}


def test_rerun_computes_nothing_and_reports_cached(tmp_path, run_dir, client):
    first = start_pipeline(make(tmp_path, run_dir), 1, 6, client=client, disable_display=True)
    assert first.ok
    before = {p: calls(tmp_path / "ws", p) for p in ("scale", "sum", "stat")}
    records = list(Manifest(tmp_path / "ws").records())
    assert len(records) == 15 and all(r.status == "done" for r in records)
    record = Manifest(tmp_path / "ws").read("stat", 3)
    assert record.artifacts["stat"]["checksum"].startswith("sha256:")
    assert record.inputs["upstream"]["phase"] == "sum" and record.host and record.started and record.finished

    again = start_pipeline(make(tmp_path, run_dir), 1, 6, client=client, disable_display=True)
    assert again.ok
    assert {p: calls(tmp_path / "ws", p) for p in ("scale", "sum", "stat")} == before
    assert set(statuses(again, "stat").values()) == {"cached"}
    saved = json.loads((tmp_path / "ws/report.json").read_text())
    assert saved["counts"]["scale"]["cached"] == 5
    assert again.outcome("stat", 3).result.metadata["mean"] == first.outcome("stat", 3).result.metadata["mean"]


def test_changed_parameter_recomputes_that_phase_and_downstream_only(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir, middle=OffsetSum(0.0)), 1, 6, cluster=SYNC, disable_display=True)
    scale_calls = calls(tmp_path / "ws", "scale")
    report = start_pipeline(make(tmp_path, run_dir, middle=OffsetSum(1.5)), 1, 6, cluster=SYNC, disable_display=True)
    assert report.ok
    assert calls(tmp_path / "ws", "scale") == scale_calls
    assert set(statuses(report, "scale").values()) == {"cached"}
    assert set(statuses(report, "sum").values()) == {"done"}
    assert set(statuses(report, "stat").values()) == {"done"}
    assert sorted(calls(tmp_path / "ws", "sum")) == sorted([1, 2, 3, 5, 6] * 2)
    notes = "\n".join(report.notes)
    assert "phase 'sum': recomputing 5 runs (1-3,5-6): configuration changed (offset: 0.0 → 1.5)" in notes
    assert "phase 'stat': recomputing 5 runs" in notes and "upstream phase 'sum' is recomputed" in notes
    assert "configuration changed (offset: 0.0 → 1.5)" in report.render()


def test_force_and_force_phase(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True, force_phases=["sum"])
    assert set(statuses(report, "scale").values()) == {"cached"}
    assert set(statuses(report, "sum").values()) == set(statuses(report, "stat").values()) == {"done"}
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True, force=True)
    assert {report.status(p, r) for p in ("scale", "sum", "stat") for r in report.runs} == {"done"}
    assert calls(tmp_path / "ws", "scale") == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError, match="unknown phase.*nope"):
        start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True, force_phases=["nope"])


def test_corrupted_artifact_is_detected_and_recomputed(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True)
    good = artifacts(tmp_path / "ws")
    target = tmp_path / "ws/scale/run_0003.h5"
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[-100:] = bytes(100)  # same size, other bytes, same mtime: only a checksum sees it
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    trusting = start_pipeline(
        make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True, resume=ResumePolicy(verify="stat")
    )
    assert trusting.status("scale", 3) == "cached"  # the documented blind spot of the fast policy
    report = start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True)
    assert report.status("scale", 3) == "done"
    assert report.status("sum", 3) == report.status("stat", 3) == "done"
    assert report.status("scale", 2) == report.status("stat", 5) == "cached"
    assert "does not match its checksum" in "\n".join(report.notes)
    assert artifacts(tmp_path / "ws") == good
    assert calls(tmp_path / "ws", "scale").count(3) == 2 and calls(tmp_path / "ws", "scale").count(2) == 1

    (tmp_path / "ws/sum/run_0005.h5").unlink()
    report = start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True)
    assert (report.status("scale", 5), report.status("sum", 5), report.status("stat", 5)) == ("cached", "done", "done")
    assert "phase 'sum': recomputing 1 run (5): artifact 'sum' is missing" in report.notes
    assert artifacts(tmp_path / "ws") == good


def test_changed_run_file_recomputes_that_run(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    path = run_dir / "run_0002.h5"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    assert statuses(report, "scale") == {1: "cached", 2: "done", 3: "cached"}
    assert "phase 'scale': recomputing 1 run (2): its run file changed (size or modification time; " in report.notes[0]
    assert "`cp -p`" in report.notes[0] and "--hash-run-files" in report.notes[0]
    content = ResumePolicy(run_identity="content")  # content identity ignores the mtime: first run records it
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True, resume=content)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True, resume=content)
    assert set(statuses(report, "scale").values()) == {"cached"}


def test_inactive_phase_warns_about_another_configuration(tmp_path, run_dir, caplog):
    start_pipeline(make(tmp_path, run_dir, scale=ScalePhase(factor=2.0)), 1, 3, cluster=SYNC, disable_display=True)
    pipeline = make(tmp_path, run_dir, scale=ScalePhase(factor=3.0), active=(False, True, True))
    report = start_pipeline(pipeline, 1, 3, cluster=SYNC, disable_display=True)
    assert report.ok and calls(tmp_path / "ws", "scale") == [1, 2, 3]
    assert set(statuses(report, "scale").values()) == {"cached"}
    assert set(statuses(report, "sum").values()) == {"cached"}  # made from exactly these artifacts
    warning = next(n for n in report.notes if "inactive" in n)
    assert "phase 'scale' is inactive" in warning and "factor: 2.0 → 3.0" in warning and "runs 1-3" in warning
    assert "factor: 2.0 → 3.0" in caplog.text


def test_workspace_seed_is_kept_for_resume(tmp_path, run_dir):
    first = start_pipeline(make(tmp_path, run_dir, seed=None), 1, 2, cluster=SYNC, disable_display=True)
    second = start_pipeline(make(tmp_path, run_dir, seed=None), 1, 2, cluster=SYNC, disable_display=True)
    assert first.seed == second.seed
    assert set(statuses(second, "stat").values()) == {"cached"}
    changed = start_pipeline(make(tmp_path, run_dir, seed=5), 1, 2, cluster=SYNC, disable_display=True)
    assert set(statuses(changed, "scale").values()) == {"done"}
    assert "seed" in "\n".join(changed.notes)


def test_bad_run_files_fail_alone_and_finished_work_is_kept(tmp_path, run_dir):
    (run_dir / "run_0002.h5").write_text("this is not HDF5")
    with h5py.File(run_dir / "run_0005.h5", "w") as handle:
        handle.create_dataset("other", data=[1.0])
    report = start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True)
    assert report.failed_runs == [2, 5]
    assert "run_0002.h5" in report.outcome("scale", 2).error and "run 2" in report.outcome("scale", 2).error
    assert report.outcome("scale", 2).error_type == "BadRunFileError"
    assert "dataset 'signal' is missing" in report.outcome("scale", 5).error
    assert Manifest(tmp_path / "ws").read("scale", 2).status == "failed"

    faultphases_runs = [1, 3, 6]
    from toyphases import make_run_files

    make_run_files(run_dir, [2, 5])
    again = start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True)
    assert again.ok
    assert all(again.status("stat", run) == "cached" for run in faultphases_runs)
    assert again.status("stat", 2) == again.status("stat", 5) == "done"
    assert sorted(calls(tmp_path / "ws", "scale")) == [1, 2, 3, 5, 6]


@pytest.mark.parametrize(
    ("middle", "message"),
    [
        (NotAResult(bad_on=(3,)), "phase 'sum' returned a dict for run 3, not a gyre.PhaseResult"),
        (LostArtifact(bad_on=(3,)), "phase 'sum' reported artifact 'sum' for run 3 at"),
    ],
)
def test_bad_results_fail_that_run(tmp_path, run_dir, middle, message):
    report = start_pipeline(make(tmp_path, run_dir, middle=middle), 1, 6, cluster=SYNC, disable_display=True)
    assert report.failed_runs == [3]
    assert message in report.outcome("sum", 3).error
    assert report.outcome("sum", 3).error_type == "InvalidResultError"
    assert report.status("stat", 3) == "skipped" and report.status("stat", 6) == "done"
    assert Manifest(tmp_path / "ws").read("sum", 3).status == "failed"
    assert Manifest(tmp_path / "ws").read("stat", 3) is None


def test_unreadable_manifest_record_means_recompute(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    journal = Manifest(tmp_path / "ws").journal("sum")
    lines = journal.read_text().splitlines(keepends=True)
    torn = [line[:40] + "\n" if '"run":2,' in line else line for line in lines]
    journal.write_text("".join(torn))
    report = start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    assert statuses(report, "sum") == {1: "cached", 2: "done", 3: "cached"}
    assert Manifest(tmp_path / "ws").read("sum", 2).status == "done"


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    manifest = Manifest(tmp_path)
    first = ManifestRecord("sum", 1, "done", "a", "b", "c")
    manifest.write(first)
    with open(manifest.journal("sum"), "a") as handle:
        handle.write('{"format": "gyre-manifest/1", "phase": "su')  # the driver died mid-append
    later = Manifest(tmp_path)
    later.write(ManifestRecord("sum", 2, "done", "d", "e", "f"))
    assert [r.run for r in Manifest(tmp_path).records("sum")] == [1, 2]


def test_superseded_records_are_compacted_by_the_lock_holder(tmp_path):
    manifest = Manifest(tmp_path)
    for attempt in range(30):
        for run in (1, 2):
            manifest.write(ManifestRecord("sum", run, "failed" if attempt < 29 else "done", str(attempt), "b", "c"))
    manifest.remove("sum", 2)
    reader = Manifest(tmp_path)
    assert reader.load_all().keys() == {("sum", 1)}
    assert reader.compact() == 60
    assert len(reader.journal("sum").read_text().splitlines()) == 1
    record = Manifest(tmp_path).read("sum", 1)
    assert record is not None and record.status == "done" and record.fingerprint == "29"


def test_records_of_an_older_workspace_are_still_read(tmp_path):
    record = ManifestRecord("sum", 4, "done", "a", "b", "c")
    (tmp_path / ".gyre/manifest/sum").mkdir(parents=True)
    (tmp_path / ".gyre/manifest/sum/run_0004.json").write_text(json.dumps(record.to_dict()))
    assert Manifest(tmp_path).read("sum", 4) == record
    assert Manifest(tmp_path).phases() == ["sum"]


def test_status_and_provenance_commands(tmp_path, run_dir, capsys):
    start_pipeline(make(tmp_path, run_dir, scale=ScalePhase(fail_on=(5,))), 1, 6, cluster=SYNC, disable_display=True)
    (tmp_path / "ws/sum/run_0002.h5").write_bytes(b"broken")
    assert main(["status", str(tmp_path / "ws")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:5]}
    # stat of run 2 was made from the broken sum artifact: stale too
    assert rows == {"scale": ["4", "0", "0", "1"], "sum": ["3", "1", "1", "0"], "stat": ["3", "1", "1", "0"]}
    assert "sum stale: run 2" in out and "stat stale: run 2" in out and "scale failed: run 5" in out

    assert main(["provenance", str(tmp_path / "ws"), "stat", "3"]) == 0
    out = capsys.readouterr().out
    assert "phase 'stat', run 3: done" in out and "seed     11" in out and "now      intact" in out
    assert "made from phase 'sum'" in out and "made from phase 'scale'" in out and "run file run_0003.h5" in out
    assert '"factor": 2.0' in out
    assert main(["provenance", str(tmp_path / "ws"), "stat", "4"]) == 2
    assert "no record of phase 'stat' for run 4" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "nothing")]) == 2


def test_atomic_artifacts_through_the_context(tmp_path):
    import numpy as np

    from gyre import RunContext
    from gyre.io import write_artifact
    from gyre.progress import ProgressReporter

    ctx = RunContext(tmp_path, 7, "p", np.random.default_rng(0), ProgressReporter("p", 7, None))
    with pytest.raises(RuntimeError), ctx.artifact() as path:
        path.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert not ctx.artifact_path().exists() and list(ctx.artifact_dir.iterdir()) == []
    with pytest.raises(TypeError):
        write_artifact(ctx.artifact_path(), {"x": ("event", np.array([object()]))})
    assert list(ctx.artifact_dir.iterdir()) == []
    with ctx.artifact() as path:
        path.write_bytes(b"whole")
    assert ctx.artifact_path().read_bytes() == b"whole"


def test_temporaries_of_killed_tasks_are_swept(tmp_path, run_dir):
    workspace = tmp_path / "ws"
    (workspace / "scale").mkdir(parents=True)
    litter = workspace / "scale" / ".run_0002.h5.0123456789ab.tmp"
    litter.write_bytes(b"half")
    own = workspace / "scale" / ".notes.tmp"
    own.write_text("not gyre's")
    assert start_pipeline(make(tmp_path, run_dir), 1, 2, cluster=SYNC, disable_display=True).ok
    assert not litter.exists() and own.exists()


def test_fingerprints_are_the_same_in_another_process(tmp_path):
    import subprocess
    import sys

    from faultphases import gyre_env

    from gyre.workspace.manifest import config_fingerprint

    code = (
        "from faultphases import OffsetSum; from gyre.workspace.manifest import config_fingerprint; "
        "print(config_fingerprint(OffsetSum(1.5), seed=3, lineage=('a',))[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=gyre_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == config_fingerprint(OffsetSum(1.5), seed=3, lineage=("a",))[0]
    assert config_fingerprint(OffsetSum(1.5), seed=3)[0] != config_fingerprint(OffsetSum(1.5), seed=4)[0]
    assert config_fingerprint(OffsetSum(1.5), seed=3)[0] != config_fingerprint(OffsetSum(2.5), seed=3)[0]


def test_cli_force_flags(tmp_path, run_dir, capsys):
    from faultphases import pipeline_module

    module = pipeline_module(tmp_path, tmp_path / "ws", run_dir, delay=0.0)
    command = ["run", f"{module}:pipeline", "--runs", "1-3", "--sync", "--no-display"]
    assert main(command) == 0
    assert main([*command, "--trust-mtime"]) == 0
    assert calls(tmp_path / "ws", "sum") == [1, 2, 3]
    assert main([*command, "--force-phase", "sum"]) == 0
    assert calls(tmp_path / "ws", "scale") == [1, 2, 3] and calls(tmp_path / "ws", "sum") == [1, 1, 2, 2, 3, 3]
    assert main([*command, "--force"]) == 0
    assert calls(tmp_path / "ws", "scale") == [1, 1, 2, 2, 3, 3]
    assert main([*command, "--force-phase", "nope"]) == 2
    assert "cannot force unknown phase(s) nope" in capsys.readouterr().err


def test_workspace_that_cannot_be_created_stops_the_start(tmp_path, run_dir):
    (tmp_path / "file").write_text("in the way")
    pipeline = Pipeline([ScalePhase()], [True], tmp_path / "file" / "ws", run_dir)
    with pytest.raises(ConfigError, match=f"cannot create the workspace {tmp_path / 'file' / 'ws'}"):
        start_pipeline(pipeline, 1, 3, cluster=SYNC, disable_display=True)


def test_nothing_to_compute_starts_no_cluster(tmp_path, run_dir, monkeypatch):
    from gyre import LocalModel

    assert start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=SYNC, disable_display=True).ok

    def refuse(self):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(LocalModel, "open", refuse)
    report = start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=LocalModel(2), disable_display=True)
    assert report.ok and {report.status("stat", run) for run in report.runs} == {"cached"}
    with pytest.raises(AssertionError, match="a cluster was started"):
        start_pipeline(make(tmp_path, run_dir), 1, 6, cluster=LocalModel(2), disable_display=True, force=True)


def test_canonical_config_values():
    import numpy as np

    from gyre.workspace.manifest import canonical, digest

    big = np.arange(1000.0)
    summary = canonical({"weights": big, "small": np.array([1, 2]), "path": Path("/x"), "n": np.int64(3)})
    assert summary["small"] == [1, 2] and summary["path"] == "/x" and summary["n"] == 3
    assert summary["weights"]["shape"] == [1000] and summary["weights"]["array"].startswith("sha256:")
    changed = big.copy()
    changed[500] = -1
    assert digest({"w": big}) != digest({"w": changed}) and digest({"w": big}) == digest({"w": big.copy()})
    assert canonical({"b": 1, "a": {3, 1}}) == {"a": [1, 3], "b": 1}
    assert digest(object()) == digest(object())  # memory addresses do not leak into fingerprints


def test_a_jobs_manifest_holds_records_briefly_and_writes_them_on_close(tmp_path):
    record = ManifestRecord("sum", 1, "done", "a", "b", "c")
    with Manifest(tmp_path, flush_every=60) as manifest:
        manifest.write(record)
        assert Manifest(tmp_path).read("sum", 1) is None  # still in memory
        assert manifest.read("sum", 1) == record  # its own reads see it
        manifest.write(ManifestRecord("sum", 2, "done", "a", "b", "c"))
    assert [r.run for r in Manifest(tmp_path).records("sum")] == [1, 2]
