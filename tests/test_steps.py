"""Function steps: laziness, dependencies, levels, caching, failures, the schema guard."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from gyre.execution import ClientModel, ExecutionModel, SyncModel
from gyre.steps import (
    SchemaConflictError,
    StepDefinitionError,
    StepResultError,
    Workflow,
)
from gyre.steps.fingerprint import code_fingerprint
from gyre.steps.storage import find_result, load_result, store_result

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "steps" / "calibration.py"


@pytest.fixture(scope="module")
def local_client() -> Iterator[Client]:
    """One LocalCluster of 2 single-threaded worker processes, shared by this module's tests."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(params=["sync", "local"])
def model(request: pytest.FixtureRequest) -> ExecutionModel:
    """Failure-isolating in-process execution, and the local cluster (started once per module)."""
    if request.param == "sync":
        return SyncModel(raise_errors=False)
    return ClientModel(request.getfixturevalue("local_client"))


def counting(calls: Path, fn: Any) -> Any:
    """``fn`` that also leaves one file in ``calls`` per call (works across processes)."""

    def wrapper(*args: Any) -> Any:
        calls.mkdir(exist_ok=True)
        (calls / uuid.uuid4().hex).touch()
        return fn(*args)

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__name__
    return wrapper


def n_calls(calls: Path) -> int:
    return len(list(calls.iterdir())) if calls.exists() else 0


def make_function(source: str, name: str, **data: Any) -> Any:
    """A function compiled from ``source`` in its own namespace holding module-level ``data``."""
    namespace: dict[str, Any] = {"__name__": "generated_steps", **data}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace[name]


# 1. laziness, dependencies -------------------------------------------------------------


def test_calling_a_step_records_it_and_computes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "new" / "cache"
    wf = Workflow("lazy", cache)
    assert cache.is_dir()
    calls = tmp_path / "calls"
    square = wf.step(counting(calls, lambda x: x * x))

    step = square(3)
    cube = wf.step(name="cube")(lambda x: x**3)(step)
    assert n_calls(calls) == 0
    assert wf.steps == (step, cube)
    assert cube.name == "cube"
    assert cube.deps == (step,)
    assert list(cache.iterdir()) == []
    with pytest.raises(StepResultError, match="run the workflow first") as info:
        wf.get_result(step)
    assert info.value.status == "not run"


def test_dependencies_are_transitive_and_give_levels(tmp_path: Path, model: ExecutionModel) -> None:
    wf = Workflow("chain", tmp_path / "cache")

    @wf.step
    def first() -> dict[str, Any]:
        time.sleep(0.3)
        return {"value": 2, "other": 0}

    @wf.step
    def second(x: int) -> int:
        time.sleep(0.3)
        return x + 1

    @wf.step
    def third() -> str:
        return "after both"

    a = first()
    b = second(a["value"])  # an item of a's result
    c = third(depends_on=[b])  # only the highest-order dependency is declared
    assert [s.level for s in (a, b, c)] == [1, 2, 3]
    assert [[s.name for s in level] for level in wf.levels()] == [["first"], ["second"], ["third"]]

    report = wf.run(model, display=False)

    assert report.ok
    assert report["third"].start >= report["second"].end >= report["first"].end
    assert wf.get_result(b) == 3
    assert wf.get_result("third") == "after both"
    assert "level 3" in wf.describe()
    dot = wf.to_dot()
    assert 'subgraph cluster_level_3 { label="level 3";' in dot
    assert '"second" -> "third" [style=dashed];' in dot
    assert '"first" -> "second";' in dot


# 2. no level barrier --------------------------------------------------------------------


def test_a_step_starts_when_its_own_inputs_are_done_not_its_level(tmp_path: Path, local_client: Client) -> None:
    wf = Workflow("no-barrier", tmp_path / "cache")

    @wf.step
    def slow() -> str:
        time.sleep(3.0)
        return "slow"

    @wf.step
    def quick() -> int:
        return 1

    @wf.step
    def after_quick(x: int) -> int:
        return x + 1

    slow()
    follower = after_quick(quick())
    assert follower.level == 2

    report = wf.run(ClientModel(local_client), display=False)

    assert report.ok
    assert report["after_quick"].start < report["slow"].end - 1.0


# 3. caching -----------------------------------------------------------------------------


def test_second_run_of_an_unchanged_workflow_recomputes_nothing(tmp_path: Path, model: ExecutionModel) -> None:
    calls = tmp_path / "calls"

    def build() -> Workflow:
        wf = Workflow("cached", tmp_path / "cache")
        noise = wf.step(counting(calls, lambda n: np.random.default_rng(n).normal(size=n)))
        total = wf.step(counting(calls, lambda arrays: float(sum(a.sum() for a in arrays))))
        total([noise(5), noise(7)])
        return wf

    first = build().run(model, display=False)
    assert [r.status for r in first.records] == ["done", "done", "done"]
    assert n_calls(calls) == 3

    again = build()  # a fresh process would rebuild the same definition
    second = again.run(model, display=False)

    assert [r.status for r in second.records] == ["cached", "cached", "cached"]
    assert n_calls(calls) == 3
    assert again.get_result("<lambda>_3") == pytest.approx(first_total(5, 7))


def first_total(*sizes: int) -> float:
    return float(sum(np.random.default_rng(n).normal(size=n).sum() for n in sizes))


def test_a_changed_module_constant_invalidates_only_its_steps(tmp_path: Path, model: ExecutionModel) -> None:
    source = "def scale(x):\n    return x * GAIN\n"
    gain_2 = make_function(source, "scale", GAIN=2.0)
    gain_3 = make_function(source, "scale", GAIN=3.0)

    def build(scale: Any) -> Workflow:
        wf = Workflow("consts", tmp_path / "cache")
        base = wf.step(lambda: 10.0)
        wf.step(scale)(base())
        return wf

    assert build(gain_2).run(model, display=False)["scale"].status == "done"
    assert build(gain_2).run(model, display=False)["scale"].status == "cached"

    wf = build(gain_3)
    report = wf.run(model, display=False)

    assert [r.status for r in report.records] == ["cached", "done"]
    assert wf.get_result("scale") == 30.0


def test_code_fingerprint_follows_constants_helpers_and_defaults_not_layout() -> None:
    times_2 = make_function("def f(x):\n    return x * 2\n", "f")
    times_3 = make_function("def f(x):\n    return x * 3\n", "f")
    moved = make_function("\n\n# a comment\ndef f(x):\n    return x * 2  # same code\n", "f")
    default = make_function("def f(x, k=2):\n    return x * k\n", "f")
    default_4 = make_function("def f(x, k=4):\n    return x * k\n", "f")
    helper_src = "def helper(x):\n    return x + {}\n\ndef f(x):\n    return helper(x)\n"
    helper_1 = make_function(helper_src.format(1), "f")
    helper_2 = make_function(helper_src.format(2), "f")
    nested_src = "def f(xs):\n    return [x * {} for x in xs]\n"

    assert code_fingerprint(times_2) == code_fingerprint(moved)
    assert code_fingerprint(times_2) != code_fingerprint(times_3)
    assert code_fingerprint(default) != code_fingerprint(default_4)
    assert code_fingerprint(helper_1) != code_fingerprint(helper_2)
    assert code_fingerprint(make_function(nested_src.format(1), "f")) != code_fingerprint(
        make_function(nested_src.format(2), "f")
    )
    table = "def f(i):\n    return TABLE[i]\n"
    assert code_fingerprint(make_function(table, "f", TABLE=np.arange(3))) != code_fingerprint(
        make_function(table, "f", TABLE=np.arange(3) * 2)
    )


def test_different_arguments_never_share_a_result(tmp_path: Path, model: ExecutionModel) -> None:
    wf = Workflow("args", tmp_path / "cache")
    echo = wf.step(lambda x: repr(x) if not isinstance(x, np.ndarray) else f"{x.dtype}:{x.tolist()}")
    arguments = [3, 4, 3.0, "3", True, [1, 2], (1, 2), np.array([1, 2]), np.array([1.0, 2.0])]
    steps = [echo(a) for a in arguments]

    fingerprints = wf.fingerprints()
    assert len(set(fingerprints.values())) == len(arguments)
    report = wf.run(model, display=False)

    assert report.ok
    expected = ["3", "4", "3.0", "'3'", "True", "[1, 2]", "(1, 2)", "int64:[1, 2]", "float64:[1.0, 2.0]"]
    assert [wf.get_result(s) for s in steps] == expected


# 4. failures and the summary ------------------------------------------------------------


def build_failing(cache: Path) -> Workflow:
    wf = Workflow("failing", cache)

    @wf.step
    def fine(x: int) -> int:
        return x

    @wf.step
    def broken() -> int:
        raise ValueError("bad calibration constant")

    @wf.step
    def add(a: int, b: int) -> int:
        return a + b

    ok = fine(1)
    bad = broken()
    add(ok, bad, step_name="uses_broken")
    add(ok, 2, step_name="independent")
    fine(3, depends_on=[wf["uses_broken"]], step_name="two_away")
    return wf


def test_a_failure_skips_only_its_dependants(tmp_path: Path, model: ExecutionModel) -> None:
    wf = build_failing(tmp_path / "cache")

    report = wf.run(model, display=False)

    status = {r.name: r.status for r in report.records}
    assert status == {
        "fine": "done",
        "broken": "failed",
        "uses_broken": "skipped",
        "independent": "done",
        "two_away": "skipped",
    }
    assert not report.ok
    broken = report["broken"]
    assert broken.error == "ValueError: bad calibration constant"
    assert broken.traceback is not None
    assert "in broken" in broken.traceback
    assert wf.get_result("independent") == 3
    with pytest.raises(StepResultError, match="failed in the last run: ValueError") as failed:
        wf.get_result("broken")
    assert failed.value.status == "failed"
    with pytest.raises(StepResultError, match="dependency 'broken' failed") as skipped:
        wf.get_result("uses_broken")
    assert skipped.value.status == "skipped"


def test_the_default_sync_model_raises_the_steps_exception(tmp_path: Path) -> None:
    wf = build_failing(tmp_path / "cache")
    with pytest.raises(ValueError, match="bad calibration constant"):
        wf.run("sync", display=False)


def test_the_summary_is_written_and_printed_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = build_failing(tmp_path / "cache")
    report = wf.run(SyncModel(raise_errors=False), display=False)
    assert capsys.readouterr().out == ""

    summary = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert summary == json.loads(json.dumps(report.to_dict(), default=str))
    independent = next(s for s in summary["steps"] if s["name"] == "independent")
    assert independent["arguments"] == {"a": "<fine>", "b": "2"}
    assert independent["level"] == 2
    assert independent["status"] == "done"
    assert independent["duration"] >= 0
    assert load_result(Path(independent["result"])) == 3
    assert summary["counts"] == {"done": 2, "failed": 1, "skipped": 2}

    wf.run(SyncModel(raise_errors=False), display=True)
    out = capsys.readouterr().out
    assert "independent" in out
    assert "cached" in out
    assert "ValueError: bad calibration" in out


# 5. the schema guard --------------------------------------------------------------------


def test_another_workflow_in_the_same_cache_is_refused_unless_overwritten(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = Workflow("first", cache)
    first.step(lambda: 1)()
    first.run("sync", display=False)

    same = Workflow("first", cache)
    same.step(lambda: 1)()
    assert same.run("sync", display=False)["<lambda>"].status == "cached"

    other = Workflow("second", cache)
    other.step(lambda: 1)()
    other.step(lambda: 2)(step_name="extra")
    with pytest.raises(SchemaConflictError, match=r"holds workflow 'first'.*steps only here: extra"):
        other.run("sync", display=False)
    assert json.loads((cache / "workflow.json").read_text())["workflow"] == "first"

    report = other.run("sync", display=False, overwrite=True)
    assert report.ok
    assert json.loads((cache / "workflow.json").read_text())["workflow"] == "second"


# 6. results -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "suffix"),
    [
        (np.arange(6.0).reshape(2, 3), ".npy"),
        ({"gain": np.ones(3), "channel": np.arange(3)}, ".h5"),
        ({"gain": 1.5, "ok": True, "lines": [1, 2], "note": None}, ".json"),
        ((1, 2), ".pkl"),
        ({"mixed": np.ones(2), "label": "x"}, ".pkl"),
    ],
)
def test_results_are_stored_in_the_plainest_format_that_fits(tmp_path: Path, value: Any, suffix: str) -> None:
    path = store_result(value, cache_dir=tmp_path, function="f", fingerprint="abc", step="f")
    assert path.suffix == suffix
    assert find_result(tmp_path, "f", "abc") == path
    assert find_result(tmp_path, "f", "other") is None
    loaded = load_result(path)
    if isinstance(value, dict):
        assert loaded.keys() == value.keys()
        for key in value:
            np.testing.assert_equal(loaded[key], value[key])
    else:
        np.testing.assert_equal(loaded, value)
        assert type(loaded) is type(value)
    assert not list(tmp_path.rglob("*.tmp"))


def test_get_result_of_an_unknown_step_names_the_known_ones(tmp_path: Path) -> None:
    wf = Workflow("names", tmp_path / "cache")
    wf.step(lambda: 1)(step_name="one")
    with pytest.raises(KeyError, match="no step 'two' \\(steps: one\\)"):
        wf.get_result("two")


def test_bad_step_calls_are_definition_errors(tmp_path: Path) -> None:
    wf = Workflow("bad", tmp_path / "cache")
    other = Workflow("other", tmp_path / "other")
    pair = wf.step(lambda a, b: a + b)
    with pytest.raises(StepDefinitionError, match="cannot call step"):
        pair(1)
    with pytest.raises(StepDefinitionError, match="cannot be fingerprinted"):
        pair(1, object())
    with pytest.raises(StepDefinitionError, match="belongs to workflow 'other'"):
        pair(1, other.step(lambda: 1)())
    with pytest.raises(StepDefinitionError, match="depends_on"):
        pair(1, 2, depends_on=["not a step"])
    pair(1, 2, step_name="p")
    with pytest.raises(StepDefinitionError, match="already has a step named 'p'"):
        pair(1, 2, step_name="p")
    with pytest.raises(StepDefinitionError, match="reserve"):
        wf.step(lambda depends_on: depends_on)
    with pytest.raises(TypeError, match="cannot be unpacked"):
        list(wf["p"])


@pytest.mark.slow
def test_the_calibration_example_runs_and_then_hits_the_cache(tmp_path: Path) -> None:
    command = [sys.executable, str(EXAMPLE), "--cache-dir", str(tmp_path / "cache"), "--channels", "3"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert first.returncode == 0, first.stderr
    assert "calibration OK" in first.stdout
    second = subprocess.run([*command, "--cluster", "sync"], capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr
    summary = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert {s["status"] for s in summary["steps"]} == {"cached"}
