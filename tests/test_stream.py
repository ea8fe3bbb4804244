"""Streaming stages (gyre.stream), on the sync model and a local cluster of 2 worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from faultphases import wait_for

import gyre
from gyre.errors import ConfigError
from gyre.stream import Stage, StageFailed, Stream, StreamClosed, StreamEmpty, StreamFull, StreamResult

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def local_client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture(params=["sync", "local"])
def where(request: pytest.FixtureRequest) -> dict[str, Any]:
    """How to open a stream: in this process, or on the shared 2-process local cluster."""
    if request.param == "sync":
        return {"cluster": "sync"}
    return {"client": request.getfixturevalue("local_client")}


def is_local(where: dict[str, Any]) -> bool:
    return "client" in where


# Stage functions: module level, so worker processes import them.


def slow_square(n: int) -> int:
    time.sleep(0.3 if n == 0 else 0.02 * (n % 3))
    return n * n


def slow_first(n: int) -> int:
    time.sleep(1.0 if n == 0 else 0.01)
    return n


def span(n: int) -> tuple[int, float, float]:
    start = time.monotonic()
    time.sleep(0.1)
    return n, start, time.monotonic()


def pass_span(item: tuple[int, float, float]) -> tuple[int, float, float]:
    return span(item[0])


def drop_odd_repeat_even(n: int) -> Iterator[int] | None:
    if n % 2:
        return None
    return (n for _ in range(n // 2))


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError(f"bad item {n}")
    return n


def fail_midway(n: int) -> Iterator[int]:
    yield n
    if n == 2:
        raise KeyError("half-way")
    yield -n


def plus_one(n: int) -> int:
    return n + 1


def minus_one(n: int) -> int:
    return n - 1


def negate(n: int) -> int:
    return -n


def sleep_then(n: int) -> int:
    time.sleep(0.05)
    return n


def record_init(path: str) -> str:
    with open(path, "a") as log:
        log.write(f"{os.getpid()}\n")
    return f"calibration-{os.getpid()}"


def use_calibration(n: int, calibration: str) -> tuple[int, int, str]:
    time.sleep(0.02)
    return n, os.getpid(), calibration


def log_start(path: str, n: int) -> int:
    with open(path, "a") as log:
        log.write(f"{n}\n")
    return n


def max_overlap(spans: list[tuple[int, float, float]]) -> int:
    """The most intervals running at one instant."""
    edges = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def driver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gyre-stream-driver"]


# 1. stages, links, forks, results of a function


def test_generator_results_are_passed_on_and_none_drops_the_item(where: dict[str, Any]) -> None:
    first = Stage(drop_odd_repeat_even, workers=2)
    first.link(Stage(plus_one))
    with Stream(first, **where) as stream:
        results = list(stream.map(range(8)))
    assert [(r.index, r.value) for r in results] == [(2, 3), (4, 5), (4, 5), (6, 7), (6, 7), (6, 7)]
    assert {r.stage for r in results} == {"plus_one"}


def test_fork_delivers_every_result_to_every_leaf(where: dict[str, Any]) -> None:
    first = Stage(plus_one, workers=2)
    first.link(Stage(negate, workers=2, ordered=False))
    first.link(Stage(minus_one)).link(Stage(sleep_then, workers=2))
    with Stream(first, **where) as stream:
        results = list(stream.map(range(20)))
    by_leaf: dict[str, list[StreamResult]] = {}
    for result in results:
        by_leaf.setdefault(result.stage, []).append(result)
    assert set(by_leaf) == {"negate", "sleep_then"}
    assert sorted(r.value for r in by_leaf["negate"]) == sorted(-(n + 1) for n in range(20))
    assert [r.value for r in by_leaf["sleep_then"]] == list(range(20))  # ordered all the way
    assert all(r.ok for r in results)


def test_invalid_stages_and_links_are_refused() -> None:
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        Stage(plus_one, workers=0)
    a, b = Stage(plus_one), Stage(minus_one)
    a.link(b)
    with pytest.raises(ConfigError, match="cycle"):
        b.link(a)
    with pytest.raises(ConfigError, match="already fed by"):
        Stage(negate).link(b)
    a.link(Stage(plus_one))
    with pytest.raises(ConfigError, match="unique"):
        Stream(a, cluster="sync")
    with pytest.raises(ConfigError, match="backlog"):
        Stream(Stage(plus_one), cluster="sync", backlog=0)


# 2. put while running, get/iterate, stop signal, close


def test_items_are_accepted_while_earlier_ones_are_processing(where: dict[str, Any]) -> None:
    first = Stage(sleep_then, workers=2)
    first.link(Stage(plus_one))
    with Stream(first, backlog=8, **where) as stream:
        stream.put(1)
        assert stream.get(timeout=30).value == 2
        stream.put(2)
        stream.put(3)
        assert [stream.get(timeout=30).value for _ in range(2)] == [3, 4]
        with pytest.raises(StreamEmpty):
            stream.get(timeout=0.1)
        stream.put(None)
        with pytest.raises(StreamClosed, match="taken"):
            stream.get(timeout=1)


def test_every_item_put_before_any_is_read(where: dict[str, Any], tmp_path: Path) -> None:
    """MPipe's cookbook: put every item, then None, then read; one thread, no timeout."""
    started = tmp_path / "started"
    started.touch()
    first = Stage(partial(log_start, str(started)), workers=2, name="first")
    first.link(Stage(plus_one))
    with Stream(first, backlog=8, **where) as stream:
        for n in range(100):
            stream.put(n)  # beyond the backlog the items wait in the stream's queue
        stream.put(None)
        assert (stream.in_progress, stream.queued) == (8, 92)
        if is_local(where):  # the 8 admitted items run; nothing more while no result is taken
            wait_for(lambda: len(started.read_text().split()) == 8, 30, "the backlog's 8 items")
            time.sleep(0.3)
        assert len(started.read_text().split()) == (8 if is_local(where) else 0)
        values = [result.value for result in stream]
    assert values == [n + 1 for n in range(100)]
    assert sorted(map(int, started.read_text().split())) == list(range(100))


def test_an_unbounded_backlog_takes_every_item_at_once(where: dict[str, Any]) -> None:
    first = Stage(plus_one, workers=2)
    with Stream(first, backlog=None, **where) as stream:
        for n in range(300):
            stream.put(n)
        assert (stream.in_progress, stream.queued) == (300, 0)
        stream.put(None)
        assert [result.value for result in stream] == [n + 1 for n in range(300)]


def test_stop_signal_drains_everything_in_order(where: dict[str, Any]) -> None:
    first = Stage(slow_square, workers=2)
    with Stream(first, backlog=100, **where) as stream:
        for n in range(12):
            stream.put(n)
        stream.put(None)
        with pytest.raises(StreamClosed, match="stop signal"):
            stream.put(99)
        results = list(stream)
        assert list(stream) == []
    assert [r.value for r in results] == [n * n for n in range(12)]
    assert [r.index for r in results] == list(range(12))


def test_close_stops_running_work_and_leaves_no_thread(where: dict[str, Any]) -> None:
    stream = Stream(Stage(sleep_then, workers=2), backlog=50, **where)
    for n in range(40):
        stream.put(n)
    stream.get(timeout=30)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 5
    assert not driver_threads()
    with pytest.raises(StreamClosed):
        stream.put(1)
    with pytest.raises(StreamClosed):
        stream.get()
    stream.close()  # twice is harmless


# 3. order, worker counts, backpressure


def test_ordered_stage_delivers_in_input_order(where: dict[str, Any]) -> None:
    with Stream(Stage(slow_square, workers=2, ordered=True), **where) as stream:
        results = list(stream.map(range(10)))
    assert [r.value for r in results] == [n * n for n in range(10)]


def test_unordered_stage_delivers_as_items_complete(where: dict[str, Any]) -> None:
    with Stream(Stage(slow_first, workers=2, ordered=False), **where) as stream:
        results = list(stream.map(range(10)))
    assert sorted(r.value for r in results) == list(range(10))
    if is_local(where):  # item 0 takes 1 s; the other worker goes on meanwhile
        assert results[0].index != 0
        assert [r.index for r in results].index(0) >= 3
    else:  # one item at a time in this thread: completion order is input order
        assert [r.index for r in results] == list(range(10))


def test_worker_counts_cap_concurrent_items(where: dict[str, Any]) -> None:
    first = Stage(span, workers=2, name="two")
    first.link(Stage(pass_span, workers=1, name="one"))
    first.link(Stage(pass_span, workers=2, name="also_two"))
    with Stream(first, **where) as stream:
        results = list(stream.map(range(8)))
    assert max_overlap([r.value for r in results if r.stage == "one"]) == 1
    assert max_overlap([r.value for r in results if r.stage == "also_two"]) <= 2
    # the stream as a whole did run two items at once on two workers
    assert max_overlap([r.value for r in results]) == (2 if is_local(where) else 1)


def test_full_backlog_blocks_put_or_times_out(where: dict[str, Any]) -> None:
    with Stream(Stage(plus_one), backlog=3, **where) as stream:
        for n in range(3):
            stream.put(n, timeout=1)
        assert stream.in_progress == 3
        with pytest.raises(StreamFull, match="backlog of 3"):
            stream.put(3, timeout=0.2)
        assert stream.get(timeout=30).value == 1
        stream.put(3, timeout=5)  # room again
        assert [stream.get(timeout=30).value for _ in range(3)] == [2, 3, 4]


def test_backpressure_bounds_items_in_flight_with_a_producer_thread(where: dict[str, Any]) -> None:
    backlog = 4
    put_done = 0
    errors: list[BaseException] = []
    first = Stage(sleep_then, workers=2, ordered=False)
    with Stream(first, backlog=backlog, **where) as stream:

        def produce() -> None:
            nonlocal put_done
            try:
                for n in range(30):
                    stream.put(n, wait=True)
                    put_done += 1
                stream.put(None)
            except BaseException as exc:  # noqa: BLE001 - reported to the test thread
                errors.append(exc)

        producer = threading.Thread(target=produce)
        producer.start()
        taken = 0
        for result in stream:
            taken += 1
            assert put_done - taken <= backlog
            assert stream.in_progress <= backlog
            assert result.ok
        producer.join(timeout=30)
    assert not errors
    assert taken == 30


# 4. failures never hang


def test_failed_items_are_reported_and_the_rest_goes_on(where: dict[str, Any]) -> None:
    first = Stage(fail_on_three, workers=2)
    first.link(Stage(plus_one))
    first.link(Stage(fail_midway, workers=2))
    with Stream(first, **where) as stream:
        results = list(stream.map(range(6)))
    failed = [r for r in results if not r.ok]
    assert sorted((r.stage, r.index, type(r.error).__name__) for r in failed) == [
        ("fail_midway", 2, "KeyError"),
        ("fail_on_three", 3, "ValueError"),
    ]
    assert "bad item 3" in str(next(r.error for r in failed if r.index == 3))
    assert [r.value for r in results if r.stage == "plus_one"] == [1, 2, 3, 5, 6]
    assert [r.value for r in results if r.stage == "fail_midway" and r.ok] == [0, 0, 1, -1, 4, -4, 5, -5]


def test_fail_fast_raises_on_get_and_put(where: dict[str, Any]) -> None:
    stream = Stream(Stage(fail_on_three, workers=2), fail_fast=True, **where)
    with stream, pytest.raises(StageFailed, match="fail_on_three") as info:
        for _ in stream.map(range(50)):
            pass
    assert isinstance(info.value.__cause__, ValueError)
    assert (info.value.stage, info.value.index) == ("fail_on_three", 3)
    assert not driver_threads()


def test_fail_fast_wakes_a_producer_blocked_on_a_full_backlog(where: dict[str, Any]) -> None:
    with Stream(Stage(fail_on_three), backlog=5, fail_fast=True, **where) as stream:
        for n in range(5):
            stream.put(n)
        with pytest.raises(StageFailed):
            while True:
                stream.get(timeout=30)
        with pytest.raises(StageFailed):
            stream.put(5, timeout=30)


def test_an_item_that_cannot_be_sent_fails_alone(where: dict[str, Any]) -> None:
    with Stream(Stage(repr), **where) as stream:
        results = list(stream.map([1, threading.Lock(), 3]))
    assert [r.ok for r in results] == [True, not is_local(where), True]


# 5. per-worker initialisation


def test_init_runs_once_per_worker_process(where: dict[str, Any], tmp_path: Path) -> None:
    from functools import partial

    inits = tmp_path / "inits.txt"
    first = Stage(plus_one, workers=2)
    first.link(Stage(use_calibration, workers=2, init=partial(record_init, str(inits))))
    first.link(Stage(negate))  # a stage without init beside it
    with Stream(first, **where) as stream:
        results = list(stream.map(range(20)))
    init_pids = [int(line) for line in inits.read_text().split()]
    assert max(Counter(init_pids).values()) == 1
    run_pids = {r.value[1] for r in results if r.stage == "use_calibration"}
    assert run_pids == set(init_pids)
    assert all(r.value[2] == f"calibration-{r.value[1]}" for r in results if r.stage == "use_calibration")
    assert len(init_pids) == (2 if is_local(where) else 1)
    assert sorted(r.value for r in results if r.stage == "negate") == list(range(-20, 0))


@pytest.mark.slow
def test_stream_started_on_its_own_local_cluster() -> None:
    """``cluster="local", n_procs=2`` starts a cluster for the stream and shuts it down."""
    with Stream(Stage(slow_square, workers=2, ordered=False), cluster="local", n_procs=2) as stream:
        results = list(stream.map(range(6)))
    assert sorted(r.value for r in results) == [n * n for n in range(6)]


# the example


@pytest.mark.parametrize("cluster", ["sync", pytest.param("local", marks=pytest.mark.slow)], ids=["sync", "local"])
def test_monitor_example_runs(cluster: str) -> None:
    script = Path(__file__).parents[1] / "examples" / "stream" / "monitor.py"
    source = str(Path(gyre.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(script), "--events", "150", "--cluster", cluster, "--n-procs", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "150 events in" in done.stdout
    assert "hits reconstructed" in done.stdout
