"""Workers gyre starts: a quiet event loop and each worker process bound to its own cores."""

from __future__ import annotations

import os
import sys

import pytest

from gyre import LocalModel
from gyre.execution.tuning import cores_for_worker


def test_cores_are_dealt_in_blocks_of_a_workers_threads():
    allowed = [0, 2, 4, 6]
    assert cores_for_worker(0, 1, 2, allowed) == [0]
    assert cores_for_worker(1, 1, 2, allowed) == [2]
    assert cores_for_worker(1, 2, 2, allowed) == [4, 6]


def test_no_binding_when_the_workers_do_not_fit():
    assert cores_for_worker(0, 1, 3, [0, 1]) is None  # three workers on two cores
    assert cores_for_worker(0, 2, 2, [0, 1, 2]) is None  # four threads on three cores
    assert cores_for_worker(2, 1, 2, [0, 1]) is None  # a name beyond the cluster's size


def _worker_state() -> tuple[list[set[int]], bool]:
    import dask

    threads = [set(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")]
    return threads, bool(dask.config.get("distributed.worker.profile.enabled"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="core binding is done on Linux")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_local_model_binds_each_worker_to_its_own_core_and_quiets_it():
    with LocalModel(2, dashboard_address=None).open() as engine:
        states = engine.client.run(_worker_state)
    cores = []
    for threads, profiling in states.values():
        assert not profiling
        assert all(len(affinity) == 1 for affinity in threads), threads  # every thread, one core
        assert len({frozenset(a) for a in threads}) == 1
        cores.append(next(iter(threads[0])))
    assert len(set(cores)) == 2, cores


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="core binding is done on Linux")
def test_untuned_local_model_keeps_dask_settings():
    with LocalModel(1, dashboard_address=None, tuned=False).open() as engine:
        states = engine.client.run(_worker_state)
    ((threads, profiling),) = states.values()
    assert profiling
    assert all(affinity == set(os.sched_getaffinity(0)) for affinity in threads)
