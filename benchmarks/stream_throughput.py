"""Throughput and per-item overhead of gyre.stream, against the ideal and a ProcessPoolExecutor.

Two measurements, side by side in one run:

1. Items/s through a 3-stage stream whose stages each do ``--work-ms`` of work per item
   (busy CPU work, and sleeping), on a local cluster of 2 worker processes with 2 workers
   per stage, against the ideal of 2 cores (``2 / (3 × work)`` items/s) and against a
   ``ProcessPoolExecutor(2)`` chaining the same three calls per item (on a shared machine the
   pool's figure shows how much of the ideal the machine gives at the moment).
2. The overhead per item for tiny items (three trivial stages): gyre.stream on the same
   cluster, on the sync model, and the ProcessPoolExecutor.

    python benchmarks/stream_throughput.py [--items 120] [--tiny-items 300] [--work-ms 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from gyre.stream import Stage, Stream

N_WORKERS = 2


def spin(item: tuple[int, float]) -> tuple[int, float]:
    """Busy CPU work: ``item[1]`` seconds of this thread's CPU time."""
    end = time.thread_time() + item[1]
    while time.thread_time() < end:
        pass
    return item


def nap(item: tuple[int, float]) -> tuple[int, float]:
    """Sleeping work of ``item[1]`` seconds."""
    time.sleep(item[1])
    return item


def tiny(item: int) -> int:
    """Next to no work."""
    return item


def three_stages(fn: Callable[[Any], Any], workers: int) -> Stage:
    """Three stages of ``fn`` in series."""
    first = Stage(fn, workers=workers, name="a")
    first.link(Stage(fn, workers=workers, name="b")).link(Stage(fn, workers=workers, name="c"))
    return first


def run_stream(first: Stage, items: list[Any], **where: Any) -> float:
    """Seconds to put ``items`` through a new stream and take every result (cluster already up)."""
    with Stream(first, backlog=64, **where) as stream:
        started = time.perf_counter()
        n_results = sum(1 for result in stream.map(items) if result.ok)
        elapsed = time.perf_counter() - started
    assert n_results == len(items), f"{n_results} results for {len(items)} items"
    return elapsed


def run_pool(pool: ProcessPoolExecutor, fn: Callable[[Any], Any], items: list[Any]) -> float:
    """Seconds for the pool to call ``fn`` three times in a row on every item."""
    started = time.perf_counter()
    pending: dict[Future[Any], int] = {pool.submit(fn, item): 1 for item in items}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            calls = pending.pop(future)
            if calls < 3:
                pending[pool.submit(fn, future.result())] = calls + 1
    return time.perf_counter() - started


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=120, help="items of real work (default 120)")
    parser.add_argument("--tiny-items", type=int, default=300, help="tiny items (default 300)")
    parser.add_argument("--work-ms", type=float, default=10.0, help="work per item per stage (default 10)")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    work = args.work_ms / 1000
    items = [(n, work) for n in range(args.items)]
    tiny_items = list(range(args.tiny_items))
    ideal = N_WORKERS / (3 * work)
    with (
        LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
        ProcessPoolExecutor(N_WORKERS) as pool,
    ):
        client.wait_for_workers(N_WORKERS)
        run_pool(pool, tiny, tiny_items[:20])  # start the pool's processes
        run_stream(three_stages(tiny, N_WORKERS), tiny_items[:20], client=client)  # warm up

        print(f"1. {args.items} items × 3 stages × {args.work_ms:g} ms, {N_WORKERS} workers per stage")
        print(f"   ideal on {N_WORKERS} cores: {ideal:.1f} items/s")
        for label, fn in (("busy CPU", spin), ("sleep", nap)):
            stream_rate = args.items / run_stream(three_stages(fn, N_WORKERS), items, client=client)
            pool_rate = args.items / run_pool(pool, fn, items)
            print(
                f"   {label:8}  gyre.stream {stream_rate:5.1f} items/s = {stream_rate / ideal:.2f} × ideal"
                f" | ProcessPoolExecutor {pool_rate:5.1f} items/s = {pool_rate / ideal:.2f} × ideal"
                f" | gyre.stream / pool = {stream_rate / pool_rate:.2f}"
            )

        print(f"2. overhead per tiny item (3 trivial stages, {args.tiny_items} items)")
        pool_ms = run_pool(pool, tiny, tiny_items) / len(tiny_items) * 1e3
        print(f"   ProcessPoolExecutor({N_WORKERS})                      {pool_ms:6.2f} ms/item")
        for workers in (N_WORKERS, 4 * N_WORKERS):
            elapsed = run_stream(three_stages(tiny, workers), tiny_items, client=client)
            ms = elapsed / len(tiny_items) * 1e3
            print(
                f"   gyre.stream, local cluster, {workers} workers/stage  {ms:6.2f} ms/item"
                f" = {ms / pool_ms:.1f} × ProcessPoolExecutor"
            )
    ms = run_stream(three_stages(tiny, N_WORKERS), tiny_items, cluster="sync") / len(tiny_items) * 1e3
    print(f"   gyre.stream, sync (in-process)                   {ms:6.3f} ms/item")


if __name__ == "__main__":
    main()
