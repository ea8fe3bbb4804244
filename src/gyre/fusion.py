"""Fused run chains: a run's phases in one task, one outcome per phase.

On tiny work the cost of a (phase, run) is dask's, not the phase's: a scheduler
transition, a message to a worker and a result fetch per task. Fusing a run's chain
into one task pays that once per run instead of once per phase. The statuses and the
report stay per (phase, run): the fused task returns the outcome of every phase, a
failing phase makes the later ones ``skipped`` exactly as separate tasks would.

What is given up: the dashboard groups fused tasks under ``<phase>+<phase>+...`` rather
than per phase, the terminal bars of a run's phases advance together when the run ends,
and a worker lost mid-run repeats the whole chain rather than one phase.
"""

from __future__ import annotations

from collections.abc import Sequence

from .outcome import TaskOutcome
from .result import PhaseResult
from .tasks import TaskSpec, execute_phase

__all__ = ["execute_chain", "fused_key"]


def fused_key(phases: Sequence[str], token: str, run: int) -> str:
    """The dask key of a fused chain: ``<phase>+<phase>+...-<token>-<run>``."""
    return f"{'+'.join(phases)}-{token}-{run}"


def execute_chain(specs: Sequence[TaskSpec], payload: PhaseResult) -> tuple[TaskOutcome, ...]:
    """Run a run's phases one after the other in this task; one outcome per phase, in order.

    Never raises unless the specs ask for it (``raise_errors``), like ``execute_phase``.
    """
    outcomes: list[TaskOutcome] = []
    upstream: TaskOutcome | PhaseResult = payload
    for spec in specs:
        upstream = execute_phase(spec, upstream)
        outcomes.append(upstream)
    return tuple(outcomes)
