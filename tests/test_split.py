"""Splitting big runs by event range: same artifacts as unsplit, resumed parts, failing parts, consecutive splits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from faultphases import gyre_env, wait_for
from history import record_done
from splitphases import HitsPhase, NoisePhase, TotalPhase, make_uneven_runs
from toyphases import calls

from gyre import Pipeline, Split, iter_chunks, start_pipeline, write_artifact
from gyre.io import concat_artifacts
from gyre.workspace.parts import PartJournal

#: one run holds most of the events: with 2 workers it is split
SIZES = {1: 2000, 2: 150, 3: 120, 5: 90, 6: 60}


@pytest.fixture
def uneven(tmp_path: Path) -> Path:
    directory = tmp_path / "runs"
    make_uneven_runs(directory, SIZES)
    return directory


def pipeline(tmp_path: Path, runs: Path, name: str) -> Pipeline:
    return Pipeline([NoisePhase(), HitsPhase(), TotalPhase()], [True] * 3, tmp_path / name, runs, seed=5)


def values(workspace: Path) -> dict[str, np.ndarray]:
    """Every dataset of every run artifact (not the parts), value by value."""
    out = {}
    for path in sorted(workspace.glob("*/run_*.h5")):
        with h5py.File(path, "r") as handle:
            for name, node in handle.items():
                out[f"{path.parent.name}/{path.name}/{name}"] = node[...]
    return out


def part_records(workspace: Path, phase: str) -> dict:
    return PartJournal(workspace).parts(phase)


def test_split_run_gives_the_same_artifacts_as_unsplit(tmp_path, uneven, client):
    split = start_pipeline(pipeline(tmp_path, uneven, "split"), 1, 6, client=client, disable_display=True)
    whole = start_pipeline(pipeline(tmp_path, uneven, "whole"), 1, 6, client=client, disable_display=True, split=False)
    assert split.ok and whole.ok
    parts = split.outcome("noise", 1).parts
    assert len(parts) > 1 and whole.outcome("noise", 1).parts == ()
    assert parts[0]["first"] == 0 and parts[-1]["last"] == SIZES[1] - 1
    assert all(p["first"] % 100 == 0 for p in parts)  # on the phases' common event blocks
    assert split.outcome("noise", 2).parts == ()  # the small runs go whole
    a, b = values(tmp_path / "split"), values(tmp_path / "whole")
    # noise: noisy, event; hits: value, point_count, event, point; total: sum, n
    assert a.keys() == b.keys() and len(a) == 40
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the merged artifact is recorded and checked like any other: a second job reuses it all
    again = start_pipeline(pipeline(tmp_path, uneven, "split"), 1, 6, client=client, disable_display=True)
    assert {again.status(p, 1) for p in ("noise", "hits", "total")} == {"cached"}
    record = json.loads((tmp_path / "split/.gyre/manifest/noise.jsonl").read_text().splitlines()[-1])
    assert record["run"] in SIZES


def test_consecutive_split_phases_run_part_by_part(tmp_path, uneven, client):
    report = start_pipeline(pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True)
    assert report.ok
    noise, hits = part_records(tmp_path / "ws", "noise"), part_records(tmp_path / "ws", "hits")
    count = len(report.outcome("noise", 1).parts)
    assert len(report.outcome("hits", 1).parts) == count
    for index in range(1, count + 1):
        before, after = noise[(1, index, count)], hits[(1, index, count)]
        assert before[1] == after[1]  # the same events
        assert after[0].started >= before[0].finished  # part k of hits after part k of noise
        # hits' part read noise's part, not a merged file
    assert (tmp_path / "ws/noise/parts/run_0001.h5").is_dir()
    with h5py.File(tmp_path / "ws/hits/run_0001.h5", "r") as merged:
        assert merged["point_count"].shape == (SIZES[1],)
        assert merged["value"].shape[0] == merged["point_count"][...].sum()
    assert calls(tmp_path / "ws", "total").count(1) == 1


def test_a_failing_part_fails_its_run_only_and_resume_reuses_the_finished_parts(tmp_path, uneven, client):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "fail_at").write_text("1234")
    first = start_pipeline(pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True)
    assert not first.ok
    failed = first.outcome("noise", 1)
    assert failed.status == "failed"
    assert "run 1 part" in failed.error and "bad event 1234" in failed.error
    bad = next(p for p in failed.parts if p["status"] == "failed")
    assert bad["first"] <= 1234 <= bad["last"] and f"events {bad['first']}-{bad['last']}" in failed.error
    assert first.status("hits", 1) == "skipped" and first.status("total", 1) == "skipped"
    assert all(first.status("total", run) == "done" for run in (2, 3, 5, 6))
    count = len(failed.parts)
    assert len(calls(workspace, "noise")) == count + 4

    # the next job computes only the failed part, whatever it is told about the cluster
    (workspace / "fail_at").unlink()
    second = start_pipeline(pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True)
    assert second.ok
    assert len(calls(workspace, "noise")) == count + 4 + 1
    assert len(second.outcome("noise", 1).parts) == count
    whole = start_pipeline(pipeline(tmp_path, uneven, "whole"), 1, 6, client=client, disable_display=True, split=False)
    assert whole.ok
    a, b = values(workspace), values(tmp_path / "whole")
    for key in b:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_fail_fast_stops_at_a_failing_part(tmp_path, uneven, client):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "fail_at").write_text("1500")  # only run 1 has that event
    report = start_pipeline(pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True, fail_fast=True)
    failed = report.outcome("noise", 1)
    assert failed.status == "failed" and "run 1 part " in failed.error and "bad event 1500" in failed.error
    assert report.status("total", 1) == "skipped"
    assert any("fail_fast" in (o.error or "") for o in report.outcomes if o.status == "skipped")


def test_iter_chunks_reads_an_event_range_of_a_whole_file_and_of_a_part(tmp_path):
    whole = tmp_path / "run.h5"
    counts = np.array([2, 0, 1, 3, 1])
    write_artifact(
        whole, {"e": ("event", np.arange(5.0)), "p": ("point", np.arange(7)), "point_count": ("event", counts)}
    )
    chunks = list(iter_chunks(whole, events=range(2, 5), chunk_events=2))
    assert [(c.start, c.stop) for c in chunks] == [(2, 4), (4, 5)]
    assert np.concatenate([c["p"] for c in chunks]).tolist() == [2, 3, 4, 5, 6]
    part = tmp_path / "parts" / "run.h5" / "events_000000002-000000004.h5"
    part.parent.mkdir(parents=True)
    columns = {"e": ("event", np.arange(2.0, 5.0)), "p": ("point", np.arange(2, 7))}
    columns["point_count"] = ("event", counts[2:])
    write_artifact(part, columns)
    from gyre.io.parts import mark_part

    mark_part(part, range(2, 5))
    chunk = next(iter(iter_chunks(part, events=range(3, 5))))
    assert (chunk.start, chunk.stop) == (3, 5)
    assert chunk["e"].tolist() == [3.0, 4.0] and chunk["p"].tolist() == [3, 4, 5, 6]
    with pytest.raises(ValueError, match="holds events 2-4"):
        next(iter(iter_chunks(part, events=range(0, 3))))
    merged = concat_artifacts([whole, part], tmp_path / "joined.h5")
    with h5py.File(merged, "r") as handle:
        assert handle["e"].shape == (8,) and handle["p"].shape == (12,) and "gyre_events" not in handle.attrs
        assert handle["e"][...].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 4.0]
    labels = [tmp_path / f"labels{i}.h5" for i in range(2)]
    for i, path in enumerate(labels):
        write_artifact(path, {"label": ("event", np.array([f"ev{i}a", f"ev{i}b"])), "gain": ("pad", np.ones(3))})
    with h5py.File(concat_artifacts(labels, tmp_path / "labels.h5"), "r") as handle:
        assert handle["label"].asstr()[...].tolist() == ["ev0a", "ev0b", "ev1a", "ev1b"]
        assert handle["gain"].shape == (3,)  # not along event: from the first part


def test_split_parts_are_fixed_blocks():
    split = Split(dataset="traces", events_per_block=100)
    assert split.parts(1050, 4) == (range(0, 200), range(200, 500), range(500, 800), range(800, 1050))
    assert split.parts(1050, 4) == split.parts(1050, 4)
    assert split.parts(150, 8) == (range(0, 100), range(100, 150))
    with pytest.raises(ValueError, match="positive integer"):
        Split(dataset="traces", events_per_block=0)


@pytest.mark.slow
def test_an_interrupted_job_resumes_a_split_run_from_its_missing_parts(tmp_path, uneven):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "slow").write_text("0.5")
    module = tmp_path / "split_pipeline.py"
    module.write_text(
        "import gyre\n"
        "from splitphases import HitsPhase, NoisePhase, TotalPhase\n"
        f"pipeline = gyre.Pipeline([NoisePhase(), HitsPhase(), TotalPhase()], [True] * 3, {str(workspace)!r}, "
        f"{str(uneven)!r}, seed=5)\n"
    )
    command = [sys.executable, "-m", "gyre.cli", "run", f"{module}:pipeline", "--runs=1-6", "--no-display", "--procs=2"]
    driver = subprocess.Popen(command, env=gyre_env(), start_new_session=True, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(part_records(workspace, "noise")) >= 2, 120, "two finished parts")
        os.kill(driver.pid, signal.SIGTERM)
        code = driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert code == 128 + signal.SIGTERM
    done = {key for key, (record, _) in part_records(workspace, "noise").items() if record.status == "done"}
    count = next(iter(done))[2]
    assert 2 <= len(done) < count, "not interrupted partway through run 1"
    before = calls(workspace, "noise").count(1)

    (workspace / "slow").unlink()
    again = subprocess.run(command, env=gyre_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert calls(workspace, "noise").count(1) - before == count - len(done)  # only the missing parts
    whole = start_pipeline(pipeline(tmp_path, uneven, "whole"), 1, 6, cluster="sync", disable_display=True)
    assert whole.ok
    a, b = values(workspace), values(tmp_path / "whole")
    assert a.keys() == b.keys()
    for key in b:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_board_counts_a_split_runs_parts():
    from gyre.result import Status, TaskOutcome
    from gyre.watch.board import RunBoard

    board = RunBoard(pipeline="p", key="p-1", phases=["noise"], runs=[1, 2])
    board.run_progress({"phase": "noise", "run": 1, "completed": 5, "total": 10})
    for index in (1, 2):
        board.part_done(
            TaskOutcome("noise", 1, Status.DONE, part=(index, 5), events=range(100 * index, 100 * index + 100))
        )
    (running,) = board.snapshot()["running"]
    assert running["parts"] == "2/5 parts"


def test_the_cli_runs_every_run_whole_with_no_split(tmp_path, uneven):
    from gyre.cli import main

    module = tmp_path / "split_cli_pipeline.py"
    module.write_text(
        "import gyre\n"
        "from splitphases import HitsPhase, NoisePhase, TotalPhase\n"
        f"pipeline = gyre.Pipeline([NoisePhase(), HitsPhase(), TotalPhase()], [True] * 3, {str(tmp_path / 'ws')!r}, "
        f"{str(uneven)!r}, seed=5)\n"
    )
    assert main(["run", f"{module}:pipeline", "--runs=1-6", "--no-display", "--procs=2", "--no-split"]) == 0
    saved = json.loads((tmp_path / "ws/report.json").read_text())
    assert saved["ok"] and not any(record["parts"] for record in saved["records"])
    assert not (tmp_path / "ws/noise/parts").exists()


def test_an_adaptive_child_of_split_phases_gets_the_runs_events(tmp_path, uneven, client):
    def strategy(*, outcome, outcomes, node):
        if node.generation == 0 and outcome.run == 2:
            from gyre import ChildRequest

            return [ChildRequest("again", runs=(2,), name="again")]
        return []

    report = start_pipeline(
        pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True, adaptive=strategy
    )
    assert report.ok and report.children and report.children[0].status == "done"
    child = next((tmp_path / "ws" / "children").iterdir())
    mine = values(child)
    assert mine["hits/run_0002.h5/event"].tolist() == list(range(SIZES[2]))  # the whole run's events
    # its draws come per block too, from generators keyed by its lineage as well
    assert mine["total/run_0002.h5/sum"] != values(tmp_path / "ws")["total/run_0002.h5/sum"]


def test_the_plan_shows_the_parts_a_job_then_uses(tmp_path, uneven, client):
    from gyre import plan

    before = plan(pipeline(tmp_path, uneven, "ws"), 1, 6, n_procs=2)  # the client's 2 single-threaded workers
    shown = before.to_dict()["parts"]
    assert list(shown) == [1] and shown[1]["phases"] == ["noise", "hits"] and shown[1]["finished_parts"] == 0
    text = before.render()
    assert f"parts: run 1 in {len(shown[1]['events'])} parts (events 0-" in text and "'noise', 'hits'" in text
    assert before.task("noise", 1).facts["parts"] == len(shown[1]["events"])
    assert not (tmp_path / "ws").exists()  # a plan writes nothing
    report = start_pipeline(pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True)
    used = [[p["first"], p["last"] + 1] for p in report.outcome("noise", 1).parts]
    assert used == shown[1]["events"]
    # one worker thread splits nothing; a cluster whose size is unknown before it starts says so
    assert "no run is split on 1 worker thread" in plan(pipeline(tmp_path, uneven, "one"), 1, 6).render()
    mpi = plan(pipeline(tmp_path, uneven, "mpi"), 1, 6, cluster="mpi")
    assert "parts: decided once the cluster has started" in mpi.render() and "parts" not in mpi.to_dict()


def test_the_plan_says_which_predictor_gives_each_cost(tmp_path, uneven, client):
    from gyre import plan

    fresh = plan(pipeline(tmp_path, uneven, "ws"), 1, 6)
    assert {t.facts["predictor"] for t in fresh.tasks if t.state.computes} == {"file size"}
    assert "predicted_seconds" not in fresh.task("noise", 1).facts  # no time scale before any job
    assert "costs predicted per (phase, run): 'noise' 5 by file size" in fresh.render()
    start_pipeline(pipeline(tmp_path, uneven, "ws"), 1, 6, client=client, disable_display=True)
    again = plan(pipeline(tmp_path, uneven, "ws"), 1, 6, force=True)
    task = again.task("noise", 1)
    assert task.facts["predictor"] == "last duration" and task.facts["predicted_seconds"] > 0
    assert "of work in all" in again.render() and again.to_dict()["predicted_seconds"] > 0


def fake_history(pipe: Pipeline, seconds: dict[int, float]) -> None:
    """Done records of every (phase, run) as an earlier job writes them, run ``r`` having taken ``seconds[r]``."""
    for index in range(len(pipe.phases)):
        for run, took in seconds.items():
            record_done(pipe, index, run, took)


def test_learned_costs_split_the_run_whose_events_cost_most_not_the_one_with_most_events(tmp_path, uneven):
    from gyre import plan

    first = plan(pipeline(tmp_path, uneven, "ws"), 1, 6, n_procs=2).to_dict()["parts"]
    assert list(first) == [1]  # no history: by event counts, the run with most events
    pipe = pipeline(tmp_path, uneven, "ws")
    pipe.create_workspace()
    # an earlier job found run 2's events ~100 times dearer than the others'
    fake_history(pipe, {1: 1.0, 2: 8.0, 3: 0.06, 5: 0.05, 6: 0.03})
    learned = plan(pipe, 1, 6, n_procs=2, force=True)
    assert learned.task("noise", 2).facts["predictor"] == "last duration"
    parts = learned.to_dict()["parts"]
    assert list(parts) == [2] and len(parts[2]["events"]) > 1
    assert parts[2]["events"][0][0] == 0 and parts[2]["events"][-1][1] == SIZES[2]


def test_a_split_runs_learned_cost_is_the_work_of_its_parts_not_its_merge(tmp_path, uneven, client):
    from gyre import CostModel, Manifest, discover_runs

    pipe = pipeline(tmp_path, uneven, "ws")
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "slow").write_text("0.3")  # each part of a split phase sleeps: work the merge does not do
    report = start_pipeline(pipe, 1, 6, client=client, disable_display=True)
    outcome = report.outcome("noise", 1)
    work = sum(p["seconds"] for p in outcome.parts)
    assert len(outcome.parts) > 1 and work >= 0.3 * len(outcome.parts)
    selection = discover_runs(uneven, 1, 6)
    predicted = CostModel.from_manifest(Manifest(pipe.workspace_path), pipe, selection).predict("noise", 1)
    assert predicted.predictor == "last duration"
    assert predicted.seconds == pytest.approx(work + outcome.duration, abs=0.01)
