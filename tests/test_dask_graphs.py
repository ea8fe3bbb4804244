"""gyre in dask terms: a pipeline as dask.delayed objects on every scheduler, several pipelines on one client."""

from __future__ import annotations

import threading
from pathlib import Path

import dask
import h5py
import numpy as np
import pytest
from toyphases import ScalePhase, StatPhase, SumPhase, artifact_bytes

from gyre import Pipeline, RunOutcome, SyncModel, start_pipeline, to_delayed
from gyre.result import Status


def pipeline_at(workspace: Path, run_dir: Path, *, fail_on: tuple[int, ...] = ()) -> Pipeline:
    return Pipeline(
        [ScalePhase(fail_on=fail_on), SumPhase(), StatPhase()], [True, True, True], workspace, run_dir, seed=11
    )


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes", "distributed"])
def test_to_delayed_gives_the_artifacts_and_statuses_of_start_pipeline(scheduler, tmp_path, run_dir, request):
    reference = pipeline_at(tmp_path / "reference", run_dir, fail_on=(3,))
    expected = start_pipeline(reference, 1, 6, cluster=SyncModel(raise_errors=False), disable_display=True)
    runs = to_delayed(pipeline_at(tmp_path / "delayed", run_dir, fail_on=(3,)), 1, 6)
    assert list(runs) == [1, 2, 3, 5, 6]  # run 4 has no file
    if scheduler == "distributed":
        client = request.getfixturevalue("client")
        (computed,) = dask.compute(runs, scheduler=client)
    else:
        (computed,) = dask.compute(runs, scheduler=scheduler)
    assert all(isinstance(value, RunOutcome) for value in computed.values())
    for run, value in computed.items():
        assert value.statuses() == {p: expected.status(p, run) for p in expected.phases}
    assert computed[3].statuses() == {"scale": Status.FAILED, "sum": Status.SKIPPED, "stat": Status.SKIPPED}
    assert not computed[3].ok and computed[3].result is None
    assert computed[5].ok and computed[5].result is not None and computed[5].result.run == 5
    reference = artifact_bytes(tmp_path / "reference")
    assert reference and artifact_bytes(tmp_path / "delayed") == reference


def test_the_graph_has_one_key_per_phase_and_run_chained_in_phase_order(tmp_path, run_dir):
    runs = to_delayed(pipeline_at(tmp_path / "ws", run_dir), 1, 3, runs_to_skip=[2])
    assert list(runs) == [1, 3]
    graph = {k: v for value in runs.values() for k, v in dict(value.__dask_graph__()).items()}
    token = str(runs[1].key).split("-")[2]
    phase_keys = {k for k in graph if not str(k).startswith("gyre-run-")}
    assert phase_keys == {f"{phase}-{token}-{run}" for phase in ("scale", "sum", "stat") for run in (1, 3)}
    assert {str(runs[1].key), str(runs[3].key)} == {f"gyre-run-{token}-1", f"gyre-run-{token}-3"}
    # each phase depends on the one before it of the same run, and the run's gathering on all three
    dependencies = {str(k): {str(d) for d in v} for k, v in dask.core.get_deps(graph)[0].items()}
    assert dependencies[f"scale-{token}-1"] == set()
    assert dependencies[f"sum-{token}-1"] == {f"scale-{token}-1"}
    assert dependencies[f"stat-{token}-3"] == {f"sum-{token}-3"}
    assert dependencies[f"gyre-run-{token}-1"] == {f"{p}-{token}-1" for p in ("scale", "sum", "stat")}
    assert not (tmp_path / "ws" / "scale" / "run_0001.h5").exists()  # nothing computed before compute()
    # the larger run (3) goes first on a distributed scheduler, as under start_pipeline
    priorities = {}
    for value in runs.values():
        for layer in value.__dask_graph__().layers.values():
            given = layer.annotations["priority"]  # a number, or per key once dask merged layers
            priorities |= {str(k): given(k) if callable(given) else given for k in layer}
    assert priorities[f"scale-{token}-3"] > priorities[f"scale-{token}-1"]
    assert priorities[f"gyre-run-{token}-3"] == priorities[f"stat-{token}-3"] == priorities[f"scale-{token}-3"]


@dask.delayed
def histogram(outcomes: list[RunOutcome]) -> np.ndarray:
    """A user's own delayed function over every run: the histogram of every run's summed signal."""
    values = []
    for outcome in outcomes:
        if outcome.ok and outcome.result is not None:
            with h5py.File(outcome.outcome("sum").result.path, "r") as handle:
                values.append(handle["cumsum"][...].ravel())
    counts, _ = np.histogram(np.concatenate(values), bins=4, range=(-50, 50))
    return counts


def test_a_pipeline_folds_into_the_users_own_graph(tmp_path, run_dir):
    runs = to_delayed(pipeline_at(tmp_path / "ws", run_dir), 1, 6)
    total = histogram(list(runs.values()))
    graph = dict(total.__dask_graph__())
    assert len(graph) == 5 * 3 + 5 + 1
    (counts,) = dask.compute(total, scheduler="threads")
    assert counts.sum() > 0


def test_two_pipelines_run_side_by_side_on_one_client(client, tmp_path, run_dir, monkeypatch):
    import cloudpickle
    import watchphases
    from watchphases import CountingScale

    from gyre.watch.terminal import TerminalDisplay

    cloudpickle.register_pickle_by_value(watchphases)
    heard: dict[str, list[tuple[str, int]]] = {"first": [], "second": []}
    original = TerminalDisplay.run_progress

    def recording(self: TerminalDisplay, message: dict) -> None:
        heard[str(self.title).split(",")[0]].append((message["phase"], message["run"]))
        original(self, message)

    monkeypatch.setattr(TerminalDisplay, "run_progress", recording)

    def counting(workspace: Path, name: str) -> Pipeline:
        phases = [CountingScale(units=50), SumPhase(), StatPhase()]
        return Pipeline(phases, [True] * 3, workspace, run_dir, seed=11, name=name)

    pipelines = {name: counting(tmp_path / name, name) for name in ("first", "second")}
    ranges = {"first": (1, 3), "second": (5, 6)}
    reports: dict[str, object] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            reports[name] = start_pipeline(pipelines[name], *ranges[name], client=client, disable_display=True)
        except BaseException as exc:  # noqa: BLE001 - the test's thread reports it below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in pipelines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    first, second = reports["first"], reports["second"]
    assert first.ok and second.ok  # type: ignore[attr-defined]
    assert first.runs == (1, 2, 3) and second.runs == (5, 6)  # type: ignore[attr-defined]
    # each job heard the progress of its own runs only, although both share the client
    assert {run for _, run in heard["first"]} == {1, 2, 3}
    assert {run for _, run in heard["second"]} == {5, 6}
    # each driver log tells its own job's story only
    first_log = (tmp_path / "first" / "log" / "driver.log").read_text()
    second_log = (tmp_path / "second" / "log" / "driver.log").read_text()
    assert "starting first: runs 1-3" in first_log and "starting second" not in first_log
    assert "starting second: runs 5-6" in second_log and "starting first" not in second_log
    # and wrote what one job alone writes
    alone = start_pipeline(counting(tmp_path / "alone", "first"), 1, 3, client=client, disable_display=True)
    assert alone.ok
    assert artifact_bytes(tmp_path / "alone") == artifact_bytes(tmp_path / "first")


def test_an_inactive_phase_loads_its_artifacts_in_the_graph(tmp_path, run_dir):
    workspace = tmp_path / "ws"
    assert start_pipeline(pipeline_at(workspace, run_dir), 1, 3, cluster="sync", disable_display=True).ok
    pipeline = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [False, True, True], workspace, run_dir, seed=11)
    (computed,) = dask.compute(to_delayed(pipeline, 1, 3), scheduler="sync")
    assert {run: tuple(o.statuses().values()) for run, o in computed.items()} == {
        run: (Status.CACHED, Status.DONE, Status.DONE) for run in (1, 2, 3)
    }


def test_phases_that_split_by_event_range_give_the_split_jobs_values(tmp_path, client):
    from splitphases import HitsPhase, NoisePhase, TotalPhase, make_uneven_runs

    runs = tmp_path / "runs"
    make_uneven_runs(runs, {1: 2000, 2: 150, 3: 120})

    def split_pipeline(name: str) -> Pipeline:
        return Pipeline([NoisePhase(), HitsPhase(), TotalPhase()], [True] * 3, tmp_path / name, runs, seed=5)

    job = start_pipeline(split_pipeline("job"), 1, 3, client=client, disable_display=True)
    assert job.ok and len(job.outcome("noise", 1).parts) > 1  # the job split its big run
    (computed,) = dask.compute(to_delayed(split_pipeline("graph"), 1, 3), scheduler="threads")
    assert all(outcome.ok for outcome in computed.values())
    artifacts = sorted((tmp_path / "job").glob("*/run_*.h5"))
    assert len(artifacts) == 9
    for path in artifacts:
        twin = tmp_path / "graph" / path.parent.name / path.name
        with h5py.File(path, "r") as a, h5py.File(twin, "r") as b:
            assert set(a) == set(b)
            for name in a:
                np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=f"{path.parent.name}/{name}")
