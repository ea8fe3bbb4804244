"""Tests for gyre.io: labelled artifacts, chunked reads of run files, lazy run datasets."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

from gyre.io import iter_chunks, open_run, write_artifact
from gyre.io.artifacts import scan_file


def _artifact(path, n=6, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, n)
    return write_artifact(
        path,
        {
            "energy": ("event", rng.random(n), {"units": "MeV"}),
            "trace": (("event", "sample"), rng.integers(0, 100, (n, 5)).astype("i2")),
            "label": ("event", np.array([f"e{i}" for i in range(n)])),
            "point_count": ("event", counts),
            "x": ("point", rng.random(int(counts.sum())).astype("f4")),
            "hist": ("bin", np.arange(3)),
        },
        coords={"event": np.arange(100, 100 + n), "bin": np.array([0.5, 1.5, 2.5])},
        attrs={"threshold": 2.5},
        run=7,
        phase="tracks",
    )


def test_artifact_opens_in_xarray_with_dims_coords_and_attrs(tmp_path):
    path = _artifact(tmp_path / "tracks" / "run_0007.h5")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.energy.dims == ("event",)
        assert ds.trace.dims == ("event", "sample")
        assert ds.x.dims == ("point",)
        assert "event" in ds.indexes and "bin" in ds.indexes
        assert "sample" not in ds.variables and "point" not in ds.variables
        assert ds.event.values.tolist() == list(range(100, 106))
        assert ds.trace.dtype == np.int16 and ds.x.dtype == np.float32
        assert ds.label.values.tolist() == [f"e{i}" for i in range(6)]
        assert ds.energy.attrs == {"units": "MeV"}
        assert ds.attrs == {"threshold": 2.5, "run": 7, "phase": "tracks"}
    assert [p.name for p in path.parent.iterdir()] == ["run_0007.h5"]  # no temporary left


def test_write_artifact_rejects_inconsistent_lengths_and_leaves_no_file(tmp_path):
    path = tmp_path / "run_0001.h5"
    with pytest.raises(ValueError, match="dimension 'event' has length 3"):
        write_artifact(path, {"a": ("event", np.zeros(3)), "b": ("event", np.zeros(4))})
    with pytest.raises(ValueError, match="2 axes but 1 dimension"):
        write_artifact(path, {"a": ("event", np.zeros((3, 2)))})
    with pytest.raises(ValueError, match="coordinate 'event' has length 5|length 5 in coordinate"):
        write_artifact(path, {"a": ("event", np.zeros(3))}, coords={"event": np.arange(5)})
    assert list(tmp_path.iterdir()) == []


def test_scan_file_reads_metadata(tmp_path):
    info = scan_file(_artifact(tmp_path / "a.h5"))
    assert info.variables["trace"].dims == ("event", "sample")
    assert info.variables["event"].is_coord and not info.variables["energy"].is_coord
    assert set(info.variables) == {"event", "bin", "energy", "trace", "label", "point_count", "x", "hist"}
    assert info.sizes() == {"event": 6, "sample": 5, "point": int(sum(_counts(info.path))), "bin": 3}


def _counts(path):
    with h5py.File(path, "r") as handle:
        return handle["point_count"][:]


def test_iter_chunks_covers_every_event_once_in_bounded_chunks(tmp_path):
    path = tmp_path / "run_0001.h5"
    n = 10_003
    with h5py.File(path, "w") as handle:  # a raw run file: no dimension scales
        handle["energy"] = np.arange(n, dtype="f8")
        handle["trace"] = np.arange(n * 4, dtype="i4").reshape(n, 4)
    chunks = list(iter_chunks(path, ["energy", "trace"], chunk_bytes=8 * 1024))
    assert len(chunks) > 1
    assert all(sum(a.nbytes for a in c.arrays.values()) <= 8 * 1024 for c in chunks)
    assert np.array_equal(np.concatenate([c["energy"] for c in chunks]), np.arange(n, dtype="f8"))
    assert np.array_equal(np.concatenate([c["trace"] for c in chunks]), np.arange(n * 4).reshape(n, 4))
    assert [c.start for c in chunks[1:]] == [c.stop for c in chunks[:-1]] and chunks[-1].stop == n
    assert [len(c) for c in iter_chunks(path, ["energy"], chunk_events=4000)] == [4000, 4000, 2003]


def test_iter_chunks_gives_each_event_its_points(tmp_path):
    path = _artifact(tmp_path / "a.h5", n=50, seed=3)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        offsets = np.concatenate([[0], np.cumsum(ds.point_count.values)])
        x = ds.x.values
    for chunk in iter_chunks(path, ["energy", "x"], chunk_events=7):
        assert np.array_equal(chunk["x"], x[offsets[chunk.start] : offsets[chunk.stop]])
        assert chunk["point_count"].sum() == len(chunk["x"])
    names = set(next(iter(iter_chunks(path))).arrays)
    assert names == {"event", "energy", "trace", "label", "point_count", "x"}


def test_iter_chunks_explains_bad_names(tmp_path):
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as handle:
        handle["a"] = np.zeros(3)
        handle["b"] = np.zeros(4)
    with pytest.raises(KeyError, match="no dataset 'c'"):
        next(iter_chunks(path, ["c"]))
    with pytest.raises(ValueError, match="same number of events"):
        next(iter_chunks(path, ["a", "b"]))


def test_open_run_is_lazy_chunked_and_equal_to_the_file(tmp_path):
    path = tmp_path / "run_0003.h5"
    with h5py.File(path, "w") as handle:
        handle["energy"] = np.linspace(0, 1, 1000)
        handle["trace"] = np.arange(4000, dtype="f4").reshape(1000, 4)
    ds = open_run(path, chunk_bytes=800)
    assert ds.energy.dims == ("event",) and ds.trace.dims == ("event", "trace_axis1")
    assert ds.energy.chunks == ((100,) * 10,)
    assert np.array_equal(ds.trace.values, np.arange(4000, dtype="f4").reshape(1000, 4))
    assert float(ds.energy.sum()) == pytest.approx(500.0)


def test_open_run_reads_an_xarray_written_file(tmp_path):
    path = tmp_path / "run_0004.h5"
    source = xr.Dataset(
        {"energy": ("event", np.arange(5.0)), "hist": ("bin", np.arange(3))},
        coords={"event": np.arange(5) * 2},
        attrs={"run": 4},
    )
    source.to_netcdf(path, engine="h5netcdf")
    ds = open_run(path)
    assert ds.energy.dims == ("event",) and ds.hist.dims == ("bin",)
    xr.testing.assert_equal(ds.compute().drop_vars("event"), source.drop_vars("event"))
    assert ds.event.values.tolist() == [0, 2, 4, 6, 8] and ds.attrs == {"run": 4}
