"""What the gyre page costs on a large job: the board pushed each tick, and the page drawn on each poll.

    python benchmarks/pages.py [--runs 1000] [--phases 3] [--workers 32] [--repeats 5]

A :class:`~gyre.watch.board.RunBoard` is fed the outcomes of ``runs`` × ``phases`` (phase, run)s
placed on ``workers`` workers (1 % failing, with a traceback), as a driver would. Then, at the
end of that job, side by side:

- the push: the JSON size of a board with every bar and failure (what a push would weigh
  without offsets) and of the board one tick later carrying only the new bars (what
  :class:`~gyre.watch.publisher.BoardPublisher` sends), and the time to take the snapshot;
- the poll: the time to draw every section (:func:`~gyre.watch.sections.render_sections`, what
  the scheduler does when the board changed) and the size of ``state.json``'s answer: to a new
  page, to a page one outcome behind, and to a page up to date (the sections that move with
  the clock while the job runs: status, timeline, workers, running);
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from gyre import Status, TaskOutcome
from gyre.watch.board import RunBoard
from gyre.watch.scheduler_plugin import GyreDashboardPlugin
from gyre.watch.sections import render_sections


def feed(board: RunBoard, runs: int, phases: list[str], workers: int) -> float:
    """The outcomes of a whole job, round-robin over the workers; returns the job's end time."""
    free = [board.started] * workers
    for run in range(1, runs + 1):
        w = run % workers
        for index, phase in enumerate(phases):
            took = 0.4 + (run % 11) * 0.05 + 0.2 * index
            failed = index == 0 and run % 100 == 7
            board.task_done(
                TaskOutcome(
                    phase=phase, run=run, status=Status.FAILED if failed else Status.DONE,
                    error=f"ValueError: bad calibration for run {run}" if failed else None,
                    traceback="Traceback (most recent call last):\n" + "  File ...\n" * 12 if failed else None,
                    started=free[w], finished=free[w] + took, worker=f"tcp://10.0.{w // 8}.{w % 8}:40{w:03d}",
                )
            )  # fmt: skip
            free[w] += took
            if failed:
                break
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--phases", type=int, default=3)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    phases = [f"phase{i}" for i in range(args.phases)]
    board = RunBoard(pipeline="bench", key="bench", phases=phases, runs=range(1, args.runs + 1))
    board.started = 0.0
    end = feed(board, args.runs, phases, args.workers)
    full = board.snapshot()
    held = full["n_bars"]
    board.task_done(TaskOutcome(phase=phases[-1], run=args.runs, status=Status.DONE, started=end, finished=end + 1))
    tick = board.snapshot(bars_from=held, failures_from=full["n_failures_kept"])
    snap_times, draw_times = [], []
    for _ in range(args.repeats):
        began = time.perf_counter()
        board.snapshot(bars_from=held, failures_from=full["n_failures_kept"])
        snap_times.append(time.perf_counter() - began)
    whole = board.snapshot()
    for _ in range(args.repeats):
        began = time.perf_counter()
        render_sections(whole, end)
        draw_times.append(time.perf_counter() - began)
    plugin = GyreDashboardPlugin()
    plugin.receive(board.snapshot())
    answer = plugin.state("bench")
    unchanged = plugin.state("bench", since=board.version)
    version = board.version
    board.task_done(TaskOutcome(phase=phases[0], run=1, status=Status.DONE, started=end, finished=end + 2))
    plugin.receive(board.snapshot(bars_from=whole["n_bars"], failures_from=whole["n_failures_kept"]))
    one_more = plugin.state("bench", since=version)
    kib = 1024
    print(f"job: {args.runs} runs × {args.phases} phases on {args.workers} workers, {full['n_bars']} bars")
    print(f"push, every bar and failure   : {len(json.dumps(full)) / kib:8.1f} KiB")
    ratio = len(json.dumps(tick)) / len(json.dumps(full))
    print(f"push, one tick later (offsets): {len(json.dumps(tick)) / kib:8.1f} KiB  (ratio {ratio:.3f})")
    print(f"snapshot (driver)             : {statistics.median(snap_times) * 1e3:8.2f} ms median")
    print(f"draw all sections (scheduler) : {statistics.median(draw_times) * 1e3:8.2f} ms median")
    print(f"state.json, a new page        : {len(json.dumps(answer)) / kib:8.1f} KiB")
    print(
        f"state.json, one more outcome  : {len(json.dumps(one_more)) / kib:8.1f} KiB  (changed rows + clock sections)"
    )
    print(f"state.json, nothing changed   : {len(json.dumps(unchanged)) / kib:8.1f} KiB  (the clock sections)")


if __name__ == "__main__":
    main()
