"""A finished job of any size as a PipelineReport, for the tests of the pages' drawing.

The outcomes are what a real job of two phases (``reco``, ``fit``) would give: each run's
phases placed one after the other on the first free of ``workers`` workers, with durations
that grow with the run number, a ValueError with its traceback on the failing runs (their
``fit`` skipped), and the ``--skip``'d and missing runs left out of the outcomes.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gyre import PipelineReport, Status, TaskOutcome

PHASES = ("reco", "fit")


def synthetic_report(
    tmp_path: Path,
    *,
    runs: int,
    workers: int,
    skipped: tuple[int, ...] = (),
    missing: tuple[int, ...] = (),
    failed: tuple[int, ...] = (),
) -> PipelineReport:
    """A report of runs ``1..runs`` computed on ``workers`` workers (see the module's docstring)."""
    started = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    origin = started.timestamp()
    free = [(origin + 0.2, f"tcp://10.0.0.{1 + w // 4}:{40000 + w}") for w in range(workers)]
    heapq.heapify(free)
    found = [run for run in range(1, runs + 1) if run not in skipped and run not in missing]
    outcomes: list[TaskOutcome] = []
    for run in found:
        at, worker = heapq.heappop(free)
        for index, phase in enumerate(PHASES):
            if run in failed and index > 0:
                outcomes.append(TaskOutcome(phase=phase, run=run, status=Status.SKIPPED, reason="reco failed"))
                continue
            took = 0.5 + (run % 7) * 0.1 + index * 0.3
            if run in failed:
                message = f"bad calibration for run {run}"
                trace = (
                    f'Traceback (most recent call last):\n  File "reco.py", line 12, in run\nValueError: {message}\n'
                )
                outcomes.append(
                    TaskOutcome(
                        phase=phase, run=run, status=Status.FAILED, error=f"ValueError: {message}",
                        error_type="ValueError", traceback=trace, started=at, finished=at + took, worker=worker,
                    )
                )  # fmt: skip
            else:
                outcomes.append(
                    TaskOutcome(phase=phase, run=run, status=Status.DONE, started=at, finished=at + took, worker=worker)
                )
            at += took
        heapq.heappush(free, (at, worker))
    end = max(at for at, _ in free)
    return PipelineReport(
        pipeline="synthetic",
        workspace=tmp_path,
        seed=1,
        execution=f"test ({workers} workers)",
        phases=PHASES,
        runs=tuple(found),
        missing_runs=tuple(missing),
        skipped_runs=tuple(skipped),
        outcomes=tuple(outcomes),
        started=started,
        finished=started + timedelta(seconds=end - origin + 0.1),
    )
