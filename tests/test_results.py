"""Tests for gyre.results: artifacts across runs as lazy xarray, and the report as a dataset."""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pytest
import xarray as xr

from gyre.io import write_artifact
from gyre.io.dataset import open_artifacts, report_dataset


def _event_artifacts(workspace, runs, phase="tracks"):
    """Per-event tables of different lengths, plus a per-run histogram and scalar."""
    for run in runs:
        rng = np.random.default_rng(run)
        n = int(rng.integers(1, 30))
        write_artifact(
            workspace / phase / f"run_{run:04d}.h5",
            {
                "energy": ("event", rng.random(n), {"units": "MeV"}),
                "n_hits": ("event", rng.integers(0, 9, n).astype("i4")),
                "trace": (("event", "sample"), rng.random((n, 4)).astype("f4")),
                "hist": ("bin", np.histogram(rng.random(n), bins=3, range=(0, 1))[0]),
                "threshold": ((), 0.5 * run),
            },
            coords={"event": np.arange(n) + 1000 * run, "bin": np.array([1 / 6, 0.5, 5 / 6])},
            attrs={"version": "1.2"},
            run=run,
            phase=phase,
        )


def _report(workspace, records):
    (workspace / "report.json").write_text(json.dumps({"format": "gyre-report/1", "records": records}))


def _read(path, name):
    with h5py.File(path, "r") as handle:
        return handle[name][()]


def test_concatenated_results_equal_the_per_run_files(tmp_path):
    runs = [1, 2, 3, 5, 8]
    _event_artifacts(tmp_path, runs)
    ds = open_artifacts(tmp_path, "tracks")
    files = [tmp_path / "tracks" / f"run_{run:04d}.h5" for run in runs]
    for name in ("energy", "n_hits", "trace", "event"):
        expected = np.concatenate([_read(f, name) for f in files])
        assert ds[name].dtype == expected.dtype
        assert np.array_equal(ds[name].values, expected)
    lengths = [len(_read(f, "energy")) for f in files]
    assert ds.run.values.tolist() == np.repeat(runs, lengths).tolist()
    assert ds.runs.values.tolist() == runs
    assert np.array_equal(ds.hist.values, np.stack([_read(f, "hist") for f in files]))
    assert ds.threshold.dims == ("runs",) and ds.threshold.values.tolist() == [0.5 * r for r in runs]
    assert ds.trace.dims == ("event", "sample") and ds.hist.dims == ("runs", "bin")
    assert ds.energy.attrs == {"units": "MeV"}
    assert ds.attrs["version"] == "1.2" and ds.attrs["phase"] == "tracks" and "run" not in ds.attrs
    for run in runs:  # one run's events, selected by the run coordinate, are that run's file
        per_run = ds.energy.where((ds.run == run).compute(), drop=True).values
        assert np.array_equal(per_run, _read(tmp_path / "tracks" / f"run_{run:04d}.h5", "energy"))


def test_runs_of_equal_shape_stack_along_run(tmp_path):
    for run in (4, 2, 9):
        write_artifact(
            tmp_path / "hist" / f"run_{run:04d}.h5",
            {"counts": ("bin", np.arange(5) * run)},
            coords={"bin": np.arange(5.0)},
            run=run,
            phase="hist",
        )
    ds = open_artifacts(tmp_path, "hist", runs=[2, 4, 9])
    assert ds.counts.dims == ("run", "bin") and ds.run.values.tolist() == [2, 4, 9]
    assert ds.counts.sel(run=4).values.tolist() == [0, 4, 8, 12, 16]
    assert ds.counts.sum("run").values.tolist() == [0, 15, 30, 45, 60]
    assert ds.bin.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_failed_skipped_and_missing_runs_are_listed_not_silently_dropped(tmp_path, caplog):
    _event_artifacts(tmp_path, [1, 2, 3, 6])
    _report(
        tmp_path,
        [
            {"phase": "tracks", "run": 1, "status": "done"},
            {"phase": "tracks", "run": 2, "status": "cached"},
            {"phase": "tracks", "run": 3, "status": "failed", "error": "ValueError: bad"},  # stale file
            {"phase": "tracks", "run": 4, "status": "failed", "error": "ValueError: bad"},
            {"phase": "tracks", "run": 5, "status": "skipped"},
            {"phase": "tracks", "run": 7, "status": "missing"},
            {"phase": "clouds", "run": 6, "status": "failed"},  # another phase: irrelevant here
        ],
    )
    ds = open_artifacts(tmp_path, "tracks")
    assert ds.runs.values.tolist() == [1, 2, 6]
    assert ds.attrs["failed_runs"] == [3, 4]
    assert ds.attrs["skipped_runs"] == [5]
    assert ds.attrs["missing_runs"] == [7]
    assert set(np.unique(ds.run.values)) == {1, 2, 6}
    assert "failed runs [3, 4]" in caplog.text

    asked = open_artifacts(tmp_path, "tracks", runs=[1, 6, 10])
    assert asked.runs.values.tolist() == [1, 6] and asked.attrs["missing_runs"] == [10]
    with pytest.raises(FileNotFoundError, match="no artifact of phase 'tracks'"):
        open_artifacts(tmp_path, "tracks", runs=[4, 5])


def test_artifacts_that_differ_between_runs_are_refused(tmp_path):
    write_artifact(tmp_path / "p" / "run_0001.h5", {"a": ("event", np.zeros(3))})
    write_artifact(tmp_path / "p" / "run_0002.h5", {"a": ("event", np.zeros(3, "f4"))})
    with pytest.raises(ValueError, match="variable 'a' is float32"):
        open_artifacts(tmp_path, "p")
    write_artifact(tmp_path / "p" / "run_0002.h5", {"b": ("event", np.zeros(3))})
    with pytest.raises(ValueError, match="the same variables"):
        open_artifacts(tmp_path, "p")


def test_opening_a_thousand_artifacts_reads_no_data(tmp_path, monkeypatch):
    runs = range(1000)
    for run in runs:
        n = 3 + run % 7
        write_artifact(
            tmp_path / "small" / f"run_{run:04d}.h5",
            {"energy": ("event", np.full(n, float(run))), "hist": ("bin", np.arange(2) + run)},
            coords={"event": np.arange(n)},
            run=run,
            phase="small",
        )
    reads = []
    original = h5py.Dataset.__getitem__

    def counting(self, key, *args, **kwargs):
        reads.append(self.name)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    started = time.perf_counter()
    ds = open_artifacts(tmp_path, "small")
    opened = time.perf_counter() - started
    assert reads == []
    assert ds.sizes["runs"] == 1000 and ds.sizes["event"] == sum(3 + r % 7 for r in runs)
    assert opened < 30  # a few seconds on a laptop; generous for a loaded machine
    total = float(ds.energy.sum().compute(scheduler="sync"))
    assert total == sum(float(r) * (3 + r % 7) for r in runs)
    assert len(reads) == 1000  # one read per file, only the variable computed
    assert set(reads) == {"/energy"}


def test_compute_runs_on_the_users_cluster_and_without_one(tmp_path, client):
    _event_artifacts(tmp_path, [1, 2, 3])
    ds = open_artifacts(tmp_path, "tracks", chunk_bytes=64)  # several chunks per run
    expected = np.concatenate([_read(tmp_path / "tracks" / f"run_{r:04d}.h5", "energy") for r in (1, 2, 3)])
    assert len(ds.energy.data.chunks[0]) > 3
    on_cluster = client.compute(ds.energy.sum().data).result()
    assert on_cluster == pytest.approx(expected.sum())
    assert ds.energy.sum().compute().item() == pytest.approx(expected.sum())  # the default: the client
    with_threads = ds.compute(scheduler="threads")
    assert np.array_equal(with_threads.energy.values, expected)
    assert np.array_equal(ds.run.compute(scheduler="sync").values, with_threads.run.values)


def _report_dict():
    return {
        "format": "gyre-report/1",
        "pipeline": "detector",
        "seed": 123,
        "execution": "local (2 workers)",
        "started": "2026-11-25T10:00:00+00:00",
        "finished": "2026-11-25T10:00:12+00:00",
        "wall_seconds": 12.3,
        "phases": ["pulses", "clouds"],
        "requested_runs": [1, 2, 3],
        "missing_runs": [3],
        "skipped_runs": [],
        "records": [
            {
                "phase": "pulses",
                "run": 1,
                "status": "done",
                "duration": 0.5,
                "error": None,
                "artifacts": {"pulses": "/w/pulses/run_0001.h5"},
                "worker": "tcp://127.0.0.1:1",
                "started": 100.0,
                "finished": 100.5,
            },
            {
                "phase": "clouds",
                "run": 1,
                "status": "cached",
                "duration": 0.01,
                "error": None,
                "artifacts": {},
                "worker": None,
                "started": 100.5,
                "finished": 100.51,
            },
            {
                "phase": "pulses",
                "run": 2,
                "status": "failed",
                "duration": 0.2,
                "error": "ValueError: bad",
                "artifacts": {},
                "worker": "tcp://127.0.0.1:2",
                "started": 101.0,
                "finished": 101.2,
            },
            {
                "phase": "clouds",
                "run": 2,
                "status": "skipped",
                "duration": None,
                "error": None,
                "artifacts": {},
                "worker": None,
                "started": None,
                "finished": None,
            },
            {"phase": "pulses", "run": 3, "status": "missing", "duration": None, "error": None},
            {"phase": "clouds", "run": 3, "status": "missing", "duration": None, "error": None},
        ],
    }


class _Report:
    def to_dict(self):
        return _report_dict()


def test_report_dataset_from_a_path_a_workspace_or_a_report_object(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(_report_dict()))
    for source in (tmp_path / "report.json", tmp_path, str(tmp_path), _Report(), _report_dict()):
        ds = report_dataset(source)
        assert ds.status.dims == ("run", "phase")
        assert ds.phase.values.tolist() == ["pulses", "clouds"] and ds.run.values.tolist() == [1, 2, 3]
        assert ds.status.values.tolist() == [["done", "cached"], ["failed", "skipped"], ["missing", "missing"]]
        assert ds.status_code.values.tolist() == [[0, 1], [2, 3], [4, 4]]
        assert ds.duration.sel(run=1, phase="pulses").item() == 0.5
        assert np.isnan(ds.duration.sel(run=2, phase="clouds").item())
        assert ds.error.sel(run=2, phase="pulses").item() == "ValueError: bad"
        assert ds.error.sel(run=1, phase="pulses").item() == ""
        assert ds.attrs["pipeline"] == "detector" and ds.attrs["missing_runs"] == [3]
    assert (ds.status == "failed").sum().item() == 1
    assert ds.started.sel(run=1, phase="pulses").item() == np.datetime64(100_000_000_000, "ns").item()
    assert np.isnat(ds.finished.sel(run=2, phase="clouds").values)
    assert ds.duration.sum("run").sel(phase="pulses").item() == pytest.approx(0.7)


def test_report_dataset_writes_to_netcdf(tmp_path):
    report = _report_dict()
    report["seed"] = None
    path = tmp_path / "report.nc"
    report_dataset(report).to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        assert back.status.values[1, 0] == "failed" and "seed" not in back.attrs


def test_report_dataset_without_a_report_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="no report at"):
        report_dataset(tmp_path)


def test_plain_h5py_tables_open_with_event_as_the_first_axis(tmp_path):
    for run, n in ((1, 3), (2, 5)):
        (tmp_path / "tracks").mkdir(exist_ok=True)
        with h5py.File(tmp_path / "tracks" / f"run_{run:04d}.h5", "w") as handle:
            handle["event"] = np.arange(n) + 10 * run
            handle["theta"] = np.linspace(0, 1, n)
            handle.attrs["run"] = run
    ds = open_artifacts(tmp_path, "tracks")
    assert ds.theta.dims == ("event",) and "event" in ds.coords
    assert ds.event.values.tolist() == [10, 11, 12, 20, 21, 22, 23, 24]
    assert ds.run.values.tolist() == [1, 1, 1, 2, 2, 2, 2, 2]
