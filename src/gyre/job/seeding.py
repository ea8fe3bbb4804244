"""Reproducible random streams: one per (pipeline seed, lineage, phase, run)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import numpy as np

__all__ = ["block_generator", "fresh_seed", "run_generator", "stable_int"]


def stable_int(text: str) -> int:
    """A 64-bit integer from ``text`` that is the same on every host and Python run."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def fresh_seed() -> int:
    """A new random root seed (recorded in the report so the job can be reproduced)."""
    return secrets.randbits(63)


def run_generator(seed: int, phase: str, run: int, lineage: Sequence[str] = ()) -> np.random.Generator:
    """The generator a phase gets for a run; it depends only on its arguments.

    Never on the worker, the process or the order of execution, so the same seed gives
    the same draws on one worker, two workers or an MPI allocation.
    """
    key = [stable_int(part) for part in lineage] + [stable_int(phase), int(run)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=key)))


def block_generator(seed: int, phase: str, run: int, block: int, lineage: Sequence[str] = ()) -> np.random.Generator:
    """The generator of one fixed event block of a run, for a split phase (``ctx.event_blocks()``).

    It depends only on its arguments, never on how the run was split, so the draws of an
    event are the same in a part as in the whole run.
    """
    key = [stable_int(part) for part in lineage] + [stable_int(phase), int(run), stable_int("event-block"), int(block)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=key)))
