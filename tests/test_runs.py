"""Run discovery and run lists."""

from __future__ import annotations

import pytest
from toyphases import make_run_files

from gyre import ConfigError, NoRunsError, discover_runs
from gyre.runs import parse_run_list


def test_range_is_inclusive_with_missing_and_skipped(tmp_path):
    make_run_files(tmp_path, [1, 2, 3, 5, 6])
    selection = discover_runs(tmp_path, 1, 7, runs_to_skip=[2])
    assert selection.runs == (1, 3, 5, 6)
    assert selection.missing == (4, 7)
    assert selection.skipped == (2,)
    sizes = [r.size for r in selection.largest_first()]
    assert sizes == sorted(sizes, reverse=True)
    assert selection.largest_first()[0].run == 6


def test_empty_range_is_an_error(tmp_path):
    make_run_files(tmp_path, [1])
    with pytest.raises(NoRunsError, match="no run file of runs 10-20"):
        discover_runs(tmp_path, 10, 20)


def test_reversed_range_and_missing_directory(tmp_path):
    with pytest.raises(ConfigError, match="reversed"):
        discover_runs(tmp_path, 5, 1)
    with pytest.raises(ConfigError, match="does not exist"):
        discover_runs(tmp_path / "nope", 1, 2)


def test_custom_pattern(tmp_path):
    (tmp_path / "exp7-run12.h5").write_bytes(b"x")
    assert discover_runs(tmp_path, 10, 13, pattern="exp7-run{run}.h5").runs == (12,)


def test_parse_run_list():
    assert parse_run_list("1-3,7, 9-10") == [1, 2, 3, 7, 9, 10]
    with pytest.raises(ConfigError, match="1-400"):
        parse_run_list("1-x")
    with pytest.raises(ConfigError, match="reversed"):
        parse_run_list("5-2")
