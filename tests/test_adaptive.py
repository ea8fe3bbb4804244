"""Adaptive child graphs: limits, lineage, timing, reproducibility, failure, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import adaptivephases
import cloudpickle
import pytest
from adaptivephases import RefinePhase, TallyPhase, artifacts, make_pipeline, run_tree, tree

from gyre import ChildRequest, ConfigError, Pipeline, SyncModel, start_pipeline
from gyre.adaptive.lineage import tree_order

cloudpickle.register_pickle_by_value(adaptivephases)

SYNC = SyncModel(raise_errors=False)
ROOT = Path(__file__).resolve().parent
#: the tree run_tree() gives: runs 2 and 5 refine twice, from step 1 to 0.25
EXPECTED_TREE = [
    ["pipeline.refine-r2-0", 1, "pipeline", "done", [2]],
    ["pipeline.refine-r2-0.refine-r2-0", 2, "pipeline.refine-r2-0", "done", [2]],
    ["pipeline.refine-r5-0", 1, "pipeline", "done", [5]],
    ["pipeline.refine-r5-0.refine-r5-0", 2, "pipeline.refine-r5-0", "done", [5]],
]


def test_generation_limit_stops_an_endless_strategy_and_records_refusals(tmp_path, run_dir):
    pipeline = make_pipeline(tmp_path / "ws", run_dir, step=1.0, target=-1.0, spawn_runs=None)  # always asks for more
    report = start_pipeline(pipeline, 1, 3, cluster=SYNC, disable_display=True, max_generations=2)
    assert report.ok
    ran = [c for c in report.children if c.status != "refused"]
    refused = [c for c in report.children if c.status == "refused"]
    assert sorted(c.generation for c in ran) == [1, 1, 1, 2, 2, 2]
    assert all(c.status == "done" for c in ran)
    assert len(refused) == 3
    assert {c.generation for c in refused} == {3}
    assert all("max_generations=2" in (c.refusal or "") for c in refused)
    assert {c.name for c in refused} == {_chain(run, 3) for run in (1, 2, 3)}
    for child in refused:  # a refused child has no workspace
        assert not list(tmp_path.rglob(child.name))
    saved = json.loads((tmp_path / "ws/report.json").read_text())
    assert sum(c["status"] == "refused" for c in saved["children"]) == 3


def _chain(run: int, generations: int) -> str:
    return "pipeline" + f".refine-r{run}-0" * generations


def test_total_cap_refuses_beyond_max_children(tmp_path, run_dir):
    pipeline = make_pipeline(tmp_path / "ws", run_dir, step=1.0, target=-1.0, spawn_runs=None)
    report = start_pipeline(pipeline, 1, 6, cluster=SYNC, disable_display=True, max_generations=3, max_children=4)
    ran = [c for c in report.children if c.status != "refused"]
    refused = [c for c in report.children if c.status == "refused"]
    assert len(ran) == 4
    assert refused and all("max_children=4" in (c.refusal or "") for c in refused)
    assert len(list((tmp_path / "ws").rglob("children/pipeline.*/refine/run_*.h5"))) == 4
    assert "4 children" in report.summary() and "refused" in report.summary()


def test_limits_are_checked_before_anything_runs(tmp_path, run_dir):
    with pytest.raises(ConfigError, match="max_generations"):
        start_pipeline(make_pipeline(tmp_path / "ws", run_dir), 1, 2, cluster=SYNC, max_generations=-1)
    with pytest.raises(ConfigError, match="max_children"):
        start_pipeline(make_pipeline(tmp_path / "ws", run_dir), 1, 2, cluster=SYNC, max_children=1.5)
    assert not (tmp_path / "ws").exists()


def test_lineage_names_parents_generations_and_workspaces(tmp_path, run_dir):
    result = run_tree(tmp_path / "ws", run_dir, cluster=SYNC)
    assert result["ok"]
    assert result["tree"] == EXPECTED_TREE
    child = tmp_path / "ws/children/pipeline.refine-r2-0"
    grandchild = child / "children/pipeline.refine-r2-0.refine-r2-0"
    for workspace, step, generation in ((tmp_path / "ws", 1.0, 0), (child, 0.5, 1), (grandchild, 0.25, 2)):
        import h5py

        with h5py.File(workspace / "refine/run_0002.h5", "r") as handle:
            assert list(handle["estimate"][1:]) == [step, generation]
        assert (workspace / "tally/run_0002.h5").exists()
    # children never write into their parent's or siblings' directories
    assert sorted(p.name for p in (tmp_path / "ws/children").iterdir()) == [
        "pipeline.refine-r2-0",
        "pipeline.refine-r5-0",
    ]
    assert not (child / "refine/run_0005.h5").exists()


def test_children_start_before_the_parent_graph_finishes(tmp_path, run_dir, client):
    pipeline = make_pipeline(tmp_path / "ws", run_dir, step=1.0, target=0.5, spawn_runs=(6,), sleep=0.4)
    report = start_pipeline(pipeline, 1, 6, client=client, disable_display=True)
    assert report.ok
    (child,) = [c for c in report.children]
    assert child.name == "pipeline.refine-r6-0" and child.status == "done"
    parent_end = max(o.finished for o in report.outcomes)
    assert child.started is not None and child.started < parent_end
    spawned_at = report.outcome("refine", 6).finished
    assert child.started >= spawned_at
    # the child's outcomes are in the report, marked with its lineage
    assert {(o.phase, o.run, o.lineage) for o in report.child_outcomes} == {
        ("refine", 6, ("refine-r6-0",)),
        ("tally", 6, ("refine-r6-0",)),
    }


def random_tree(workspace: Path, run_dir: Path, **start):
    pipeline = make_pipeline(workspace, run_dir, seed=23, chance=0.6, spawn_runs=None)
    report = start_pipeline(pipeline, 1, 6, disable_display=True, max_generations=3, **start)
    return tree(report), artifacts(workspace)


def test_same_seed_same_tree_and_artifacts_on_one_and_two_workers(tmp_path, run_dir):
    one_tree, one_files = random_tree(tmp_path / "one", run_dir, n_procs=1)
    two_tree, two_files = random_tree(tmp_path / "two", run_dir, n_procs=2)
    sync_tree, sync_files = random_tree(tmp_path / "sync", run_dir, cluster=SYNC)
    assert len(one_tree) >= 3 and max(item[1] for item in one_tree) >= 2  # a real tree, not a stub
    assert one_tree == two_tree == sync_tree
    assert one_files == two_files == sync_files
    assert sum("children" in path for path in one_files) == 2 * sum(item[3] == "done" for item in one_tree)


def test_a_raising_child_fails_alone(tmp_path, run_dir):
    pipeline = make_pipeline(tmp_path / "ws", run_dir, step=1.0, target=0.25, spawn_runs=None, fail_on=((1, 5),))
    report = start_pipeline(pipeline, 1, 6, cluster=SYNC, disable_display=True)
    assert report.ok  # the requested runs are all complete
    by_name = {c.name: c for c in report.children}
    broken = by_name["pipeline.refine-r5-0"]
    assert broken.status == "failed" and broken.failed_runs == (5,)
    assert "refine broke in generation 1 on run 5" in (broken.error or "")
    assert not any(name.startswith("pipeline.refine-r5-0.") for name in by_name)  # no descendants
    others = [c for c in report.children if c is not broken]
    assert len(others) == 8 and all(c.status == "done" for c in others)
    statuses = {(o.phase, o.status) for o in report.child_outcomes if o.lineage == ("refine-r5-0",)}
    assert statuses == {("refine", "failed"), ("tally", "skipped")}
    text = report.render()
    assert "pipeline.refine-r5-0  gen 1  failed" in text
    assert "1 failed" in report.summary()


def test_adaptive_function_requests_children_after_each_finished_run(tmp_path, run_dir):
    seen = []

    def strategy(*, outcome, outcomes, node):
        seen.append((node.name, node.generation, outcome.phase, outcome.run))
        if node.generation == 0 and outcome.run in (1, 3) and outcomes["refine"].ok:
            return [ChildRequest("widen around run", phases=["refine"], runs=(outcome.run, 4, 5))]
        return []

    pipeline = make_pipeline(tmp_path / "ws", run_dir)
    report = start_pipeline(pipeline, 1, 6, cluster=SYNC, disable_display=True, adaptive=strategy)
    assert report.ok
    names = [c.name for c in tree_order(report.children)]
    assert names == ["pipeline.adaptive-r1-0", "pipeline.adaptive-r3-0"]
    child = report.children[0]
    assert child.runs == (1, 5) and child.missing_runs == (4,) and child.phases == ("refine",)
    assert child.requested_by == "adaptive function after run 1"
    assert ("pipeline.adaptive-r1-0", 1, "refine", 5) in seen  # called for the children's runs too
    assert len(seen) == 5 + 2 * 2


def test_a_raising_adaptive_function_and_bad_requests_are_recorded(tmp_path, run_dir):
    def strategy(*, outcome, outcomes, node):
        if outcome.run == 1:
            raise ValueError("strategy bug")
        if outcome.run == 2 and node.generation == 0:
            return [
                ChildRequest("typo", params={"refine": {"stepp": 0.1}}),
                ChildRequest("unknown phase", phases=["fit"]),
                ChildRequest("no such run", runs=(40,)),
                "not a request",
            ]
        return None

    pipeline = make_pipeline(tmp_path / "ws", run_dir)
    report = start_pipeline(pipeline, 1, 2, cluster=SYNC, disable_display=True, adaptive=strategy)
    refusals = {c.name: c.refusal for c in report.children}
    assert all(c.status == "refused" for c in report.children)
    assert "strategy bug" in refusals["pipeline.adaptive-r1"]
    assert "no parameter 'stepp'" in refusals["pipeline.adaptive-r2-0"]
    assert "no phase named 'fit'" in refusals["pipeline.adaptive-r2-1"]
    assert "no run file of runs 40 exists" in refusals["pipeline.adaptive-r2-2"]
    assert "not a gyre.ChildRequest" in refusals["pipeline.adaptive-r2-3"]
    with pytest.raises(ValueError, match="strategy bug"):  # the debugging model raises
        start_pipeline(make_pipeline(tmp_path / "dbg", run_dir), 1, 2, cluster="sync", adaptive=strategy)


def test_report_json_and_render_show_the_lineage_tree(tmp_path, run_dir):
    pipeline = make_pipeline(tmp_path / "ws", run_dir, step=1.0, target=0.25, spawn_runs=(2,))
    report = start_pipeline(pipeline, 1, 3, cluster=SYNC, disable_display=True, max_generations=1)
    saved = json.loads((tmp_path / "ws/report.json").read_text())
    assert [c["name"] for c in saved["children"]] == ["pipeline.refine-r2-0", "pipeline.refine-r2-0.refine-r2-0"]
    first, second = saved["children"]
    assert first["generation"] == 1 and first["parent"] == "pipeline" and first["status"] == "done"
    assert first["reason"] == "step 1 too coarse" and first["runs"] == [2] and first["duration"] > 0
    assert second["status"] == "refused" and "max_generations=1" in second["refusal"]
    assert {(r["phase"], r["run"], tuple(r["lineage"])) for r in saved["child_records"]} == {
        ("refine", 2, ("refine-r2-0",)),
        ("tally", 2, ("refine-r2-0",)),
    }
    assert {r["run"] for r in saved["records"]} == {1, 2, 3}  # the top level's records are unchanged
    text = report.render()
    assert "lineage: 1 child (1 refused)" in text
    assert "└─ pipeline.refine-r2-0  gen 1  done  runs 2" in text
    assert "refused: generation 2 is beyond max_generations=1" in text


def test_spawn_checks_its_arguments_in_the_phase(tmp_path, run_dir):
    class BadSpawn(RefinePhase):
        def run(self, payload, ctx):
            ctx.spawn("  ", runs=(1,))
            return super().run(payload, ctx)

    pipeline = Pipeline([BadSpawn(), TallyPhase()], [True, True], tmp_path / "ws", run_dir, seed=1)
    report = start_pipeline(pipeline, 1, 1, cluster=SYNC, disable_display=True)
    assert report.status("refine", 1) == "failed"
    assert "needs a short reason" in report.outcome("refine", 1).error
    assert report.children == ()


@pytest.mark.parametrize(
    "model",
    ["sync", "local", pytest.param("mpi", marks=pytest.mark.mpi)],
)
def test_end_to_end_on_each_execution_model(model, tmp_path, run_dir, request):
    reference = run_tree(tmp_path / "reference", run_dir, cluster=SYNC)
    if model == "sync":
        result = run_tree(tmp_path / "ws", run_dir, cluster=SYNC)
    elif model == "local":
        result = run_tree(tmp_path / "ws", run_dir, client=request.getfixturevalue("client"))
    else:
        result = _under_mpiexec(tmp_path / "ws", run_dir)
        assert result["execution"].startswith("mpi (4 ranks")
    assert result["ok"]
    assert result["tree"] == EXPECTED_TREE
    assert result["artifacts"] == reference["artifacts"]


def _under_mpiexec(workspace: Path, run_dir: Path) -> dict:
    pytest.importorskip("mpi4py")
    pytest.importorskip("dask_mpi")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip(f"no mpiexec next to {sys.executable}")
    command = [str(mpiexec), "-n", "4", sys.executable, str(ROOT / "mpi_scripts/adaptive_run.py")]
    done = subprocess.run(
        [*command, str(workspace), str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0].removeprefix("RESULT "))


def test_cli_limits_and_a_pipeline_level_adaptive_attribute(tmp_path, run_dir):
    from gyre.cli import main

    module = tmp_path / "adaptive_pipeline.py"
    module.write_text(
        "from pathlib import Path\n"
        "from adaptivephases import make_pipeline\n"
        "from gyre import ChildRequest\n"
        f"PIPELINE = make_pipeline(Path({str(tmp_path / 'ws')!r}), Path({str(run_dir)!r}), step=1.0, target=-1.0,"
        " spawn_runs=(3,))\n"
        "def strategy(*, outcome, outcomes, node):\n"
        "    return [ChildRequest('from the attribute', phases=['refine'])] if node.generation == 0 else []\n"
        "PIPELINE.adaptive = strategy\n"
    )
    status = main(["run", f"{module}:PIPELINE", "--runs", "1-3", "--sync", "--no-display", "--max-generations", "1"])
    assert status == 0
    children = json.loads((tmp_path / "ws/report.json").read_text())["children"]
    ran = sorted(c["name"] for c in children if c["status"] == "done")
    assert ran == [
        "pipeline.adaptive-r1-0",
        "pipeline.adaptive-r2-0",
        "pipeline.adaptive-r3-0",
        "pipeline.refine-r3-0",
    ]
    refused = [c for c in children if c["status"] == "refused"]
    assert refused and all("max_generations=1" in c["refusal"] for c in refused)
    status = main(["run", f"{module}:PIPELINE", "--runs", "1-3", "--sync", "--no-display", "--max-children", "1"])
    children = json.loads((tmp_path / "ws/report.json").read_text())["children"]
    assert sum(c["status"] != "refused" for c in children) == 1
