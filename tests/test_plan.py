"""The plan before a job: per (phase, run) compute / stale / cached / missing input, with the reason."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cloudpickle
import faultphases
import h5py
import pytest
from faultphases import OffsetSum
from toyphases import ScalePhase, StatPhase, SumPhase, calls

import gyre
from gyre import Pipeline, PlanState, ResumePolicy, SyncModel, start_pipeline
from gyre.cli import main
from gyre.runs import parse_run_list

cloudpickle.register_pickle_by_value(faultphases)

SYNC = SyncModel(raise_errors=False)


def make(tmp_path: Path, run_dir: Path, *, scale=None, middle=None, active=(True, True, True), seed=11):
    phases = [scale or ScalePhase(), middle or SumPhase(), StatPhase()]
    return Pipeline(phases, list(active), tmp_path / "ws", run_dir, seed=seed)


def tree(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


def groups(plan):
    return {(g.phase, g.state.value, g.reason, g.runs) for g in plan.groups()}


def test_plan_of_a_new_workspace_writes_nothing(tmp_path, run_dir):
    pipeline = make(tmp_path, run_dir, seed=None)
    plan = gyre.plan(pipeline, 1, 6, n_procs=4)
    assert not (tmp_path / "ws").exists()  # no workspace, no seed, no assets, no lock
    assert plan.count(PlanState.COMPUTE) == 15 and plan.exit_status == 1
    assert plan.task("scale", 1).reason == "not done before"
    assert plan.task("sum", 4).state == PlanState.MISSING_INPUT and "has no file" in plan.task("sum", 4).reason
    assert "would compute 15 (phase, run)s, reuse 0" in plan.render()
    assert str(plan) == plan.render()
    assert repr(plan) == "<JobPlan 'pipeline' runs 1-6: compute 15, stale 0, cached 0, missing input 3>"


def test_plan_after_a_configuration_change_matches_what_the_job_does(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir, middle=OffsetSum(0.0)), 1, 6, cluster=SYNC, disable_display=True)
    before = tree(tmp_path / "ws")
    unchanged = gyre.plan(make(tmp_path, run_dir, middle=OffsetSum(0.0)), 1, 6)
    assert unchanged.exit_status == 0 and not unchanged.computes
    assert unchanged.count("cached") == 15 and unchanged.count("missing input") == 3

    changed = make(tmp_path, run_dir, middle=OffsetSum(1.5))
    plan = gyre.plan(changed, 1, 6)
    assert tree(tmp_path / "ws") == before  # reading the manifest and artifacts changed nothing
    assert plan.exit_status == 1
    assert {
        ("scale", "cached", "unchanged", (1, 2, 3, 5, 6)),
        ("sum", "stale", "configuration changed (offset: 0.0 → 1.5)", (1, 2, 3, 5, 6)),
        ("stat", "stale", "upstream phase 'sum' is recomputed", (1, 2, 3, 5, 6)),
    } <= groups(plan)
    text = plan.render()
    assert "  sum    stale         5 runs (1-3,5-6): configuration changed (offset: 0.0 → 1.5)" in text
    # the job then does exactly what the plan said
    report = start_pipeline(changed, 1, 6, cluster=SYNC, disable_display=True)
    for task in plan.tasks:
        if task.run != 4:
            assert report.status(task.phase, task.run) == ("done" if task.state.computes else "cached")
    assert gyre.plan(changed, 1, 6).exit_status == 0


def test_plan_after_a_code_version_change(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    newer = type("SumPhase", (SumPhase,), {"version": "2"})()
    plan = gyre.plan(make(tmp_path, run_dir, middle=newer), 1, 3)
    assert plan.task("sum", 2).state == PlanState.STALE
    assert plan.task("sum", 2).reason == "code version changed (version 1 → 2)"
    assert plan.task("stat", 2).reason == "upstream phase 'sum' is recomputed"
    assert plan.task("scale", 2).state == PlanState.CACHED


def test_plan_after_a_changed_run_file_says_how_to_avoid_it(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    path = run_dir / "run_0002.h5"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # as `cp` without -p does
    plan = gyre.plan(make(tmp_path, run_dir), 1, 3)
    task = plan.task("scale", 2)
    assert task.state == PlanState.STALE and task.reason.startswith("its run file changed (size or modification time")
    assert "`cp -p`" in task.reason and "--hash-run-files" in task.reason
    assert plan.task("scale", 1).state == PlanState.CACHED
    # by content, a file with new times but the same bytes is the same run file: only the first
    # job that identifies by content records the checksums
    content = ResumePolicy(run_identity="content")
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True, resume=content)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert gyre.plan(make(tmp_path, run_dir), 1, 3, resume=content).exit_status == 0


def test_plan_after_a_corrupted_or_deleted_artifact(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    with h5py.File(tmp_path / "ws/sum/run_0003.h5", "r+") as handle:
        handle["cumsum"][0] = 1e9  # same size, other bytes
    (tmp_path / "ws/stat/run_0001.h5").unlink()
    plan = gyre.plan(make(tmp_path, run_dir), 1, 3)
    assert plan.task("sum", 3).reason == "artifact 'sum' does not match its checksum (corrupted or overwritten)"
    assert plan.task("stat", 3).reason == "upstream phase 'sum' is recomputed"
    assert plan.task("stat", 1).reason == "artifact 'stat' is missing"
    assert {t.state for t in plan.tasks if (t.phase, t.run) in {("sum", 3), ("stat", 3), ("stat", 1)}} == {
        PlanState.STALE
    }
    assert plan.count("cached") == 6
    # trusting sizes and mtimes: the same-size edit shows through its modification time
    trusting = gyre.plan(make(tmp_path, run_dir), 1, 3, resume=ResumePolicy(verify="stat")).task("sum", 3)
    assert trusting.state.computes and trusting.reason == "artifact 'sum' was modified after it was made"


def test_forced_phases_and_inactive_phases(tmp_path, run_dir):
    start_pipeline(make(tmp_path, run_dir), 1, 3, cluster=SYNC, disable_display=True)
    forced = gyre.plan(make(tmp_path, run_dir), 1, 3, force_phases=["sum"])
    assert {g.reason for g in forced.groups() if g.phase != "scale"} == {"forced"}
    assert forced.task("scale", 1).state == PlanState.CACHED
    inactive = make(tmp_path, run_dir, active=(False, True, True))
    assert gyre.plan(inactive, 1, 3).exit_status == 0
    (tmp_path / "ws/scale/run_0002.h5").unlink()
    plan = gyre.plan(inactive, 1, 3)
    assert plan.task("scale", 2).state == PlanState.MISSING_INPUT
    assert plan.task("stat", 2).state == PlanState.MISSING_INPUT
    assert "inactive phase 'scale'" in plan.task("stat", 2).reason
    assert plan.task("sum", 1).state == PlanState.CACHED and plan.exit_status == 0


def test_plan_entries_have_room_for_more_facts(tmp_path, run_dir):
    plan = gyre.plan(make(tmp_path, run_dir), 1, 2)
    task = plan.task("scale", 1)
    assert task.facts == {"predictor": "file size"}  # the cost model's, before any job gave it a time scale
    extended = plan.with_facts({("scale", 1): {"note": "by hand"}}, origin="a test").task("scale", 1)
    assert plan.with_facts(origin="a test").to_dict()["origin"] == "a test"
    assert extended.to_dict() == {
        "phase": "scale",
        "run": 1,
        "state": "compute",
        "reason": "not done before",
        "predictor": "file size",
        "note": "by hand",
    }


def test_dry_run_exit_status_and_json(tmp_path, run_dir, capsys, monkeypatch):
    module = tmp_path / "analysis.py"
    module.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from toyphases import ScalePhase, SumPhase, StatPhase\n"
        "from faultphases import OffsetSum\n"
        "from gyre import Pipeline\n"
        "import os\n"
        "def pipeline():\n"
        "    offset = float(os.environ.get('OFFSET', '0'))\n"
        f"    return Pipeline([ScalePhase(), OffsetSum(offset), StatPhase()], [True] * 3, {str(tmp_path / 'ws')!r}, "
        f"{str(run_dir)!r}, seed=11)\n"
    )
    spec = f"{module}:pipeline"
    assert main(["run", spec, "--runs", "1-6", "--dry-run"]) == 1
    assert "scale  compute       5 runs (1-3,5-6): not done before" in capsys.readouterr().out
    assert main(["run", spec, "--runs", "1-6", "--sync", "--no-display"]) == 0
    assert main(["run", spec, "--runs", "1-6", "--dry-run"]) == 0
    assert "would compute 0 (phase, run)s, reuse 15\n" in capsys.readouterr().out
    monkeypatch.setenv("OFFSET", "2.5")
    assert main(["run", spec, "--runs", "1-6", "-n", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"compute": 0, "stale": 10, "cached": 5, "missing input": 3}
    assert data["would_compute"] is True and data["missing_runs"] == [4]
    assert {
        "phase": "sum",
        "state": "stale",
        "reason": "configuration changed (offset: 0.0 → 2.5)",
        "runs": "1-3,5-6",
    } in data["groups"]
    task = next(t for t in data["tasks"] if t["phase"] == "stat" and t["run"] == 5)
    assert task.pop("predictor") == "last duration" and task.pop("predicted_seconds") >= 0  # its own, last job
    assert task == {"phase": "stat", "run": 5, "state": "stale", "reason": "upstream phase 'sum' is recomputed"}
    assert calls(tmp_path / "ws", "sum") == [1, 2, 3, 5, 6]  # the dry runs computed nothing
    assert main(["run", spec, "--runs", "1-6", "--json"]) == 2  # --json without --dry-run is refused
    assert "--json goes with --dry-run" in capsys.readouterr().err


def _change_config(tmp_path, run_dir, monkeypatch):
    monkeypatch.setenv("OFFSET", "2.5")


def _change_code(tmp_path, run_dir, monkeypatch):
    monkeypatch.setenv("SUM_VERSION", "2")


def _touch_run_file(tmp_path, run_dir, monkeypatch):
    path = run_dir / "run_0003.h5"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))


def _corrupt_artifact(tmp_path, run_dir, monkeypatch):
    path = tmp_path / "ws/sum/run_0003.h5"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("change", "stale_sum", "reason"),
    [
        (_change_config, "1-3,5-6", "configuration changed (offset: 0.0 → 2.5)"),
        (_change_code, "1-3,5-6", "code version changed (version 1 → 2)"),
        (_touch_run_file, "3", "its run file changed (size or modification time; "),
        (_corrupt_artifact, "3", "artifact 'sum' does not match its checksum (corrupted or overwritten)"),
    ],
    ids=["configuration", "code", "run-file", "corrupted-artifact"],
)
def test_dry_run_after_each_kind_of_change(tmp_path, run_dir, capsys, monkeypatch, change, stale_sum, reason):
    module = tmp_path / "analysis.py"
    module.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from toyphases import ScalePhase, StatPhase\n"
        "from faultphases import OffsetSum\n"
        "from gyre import Pipeline\n"
        "class Sum(OffsetSum):\n"
        "    name = 'sum'\n"
        "    version = os.environ.get('SUM_VERSION', '1')\n"
        "def pipeline():\n"
        "    phases = [ScalePhase(), Sum(float(os.environ.get('OFFSET', '0'))), StatPhase()]\n"
        f"    return Pipeline(phases, [True] * 3, {str(tmp_path / 'ws')!r}, {str(run_dir)!r}, seed=11)\n"
    )
    spec = f"{module}:pipeline"
    assert main(["run", spec, "--runs", "1-6", "--sync", "--no-display"]) == 0
    assert main(["run", spec, "--runs", "1-6", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["would_compute"] is False
    change(tmp_path, run_dir, monkeypatch)
    assert main(["run", spec, "--runs", "1-6", "--dry-run"]) == 1
    text = capsys.readouterr().out
    first = "scale" if change is _touch_run_file else "sum"
    line = next(line for line in text.splitlines() if line.startswith(f"  {first} ") and "stale" in line)
    assert reason in line, text
    assert main(["run", spec, "--runs", "1-6", "--dry-run", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    groups = {(g["phase"], g["state"], g["runs"]): g["reason"] for g in data["groups"]}
    assert reason in groups[(first, "stale", stale_sum)]
    assert groups[("stat", "stale", stale_sum)] == f"upstream phase {first!r} is recomputed"
    stale = sum(len(parse_run_list(g["runs"])) for g in data["groups"] if g["state"] == "stale")
    assert data["counts"]["stale"] == stale and data["would_compute"] is True
    # the job then recomputes exactly the stale ones
    assert main(["run", spec, "--runs", "1-6", "--sync", "--no-display"]) == 0
    assert main(["run", spec, "--runs", "1-6", "--dry-run"]) == 0


def test_adaptive_strategy_generator_is_reproducible(tmp_path, run_dir):
    """An IMPRESS-style "spawn with probability p" draws the same numbers in every job with the seed."""
    jobs: list[dict[int, float]] = []

    def strategy(*, outcome, outcomes, node):
        jobs[-1][outcome.run] = node.rng(outcome.run).random()
        return []

    for seed in (5, 5, 6):
        jobs.append({})
        start_pipeline(
            make(tmp_path, run_dir, seed=seed), 1, 6, cluster=SYNC, disable_display=True, adaptive=strategy, force=True
        )
    assert jobs[0] == jobs[1] and sorted(jobs[0]) == [1, 2, 3, 5, 6]
    assert len(set(jobs[0].values())) == 5 and jobs[2] != jobs[0]
    assert jobs[0][3] == gyre.job.seeding.run_generator(5, "<adaptive strategy>", 3).random()
