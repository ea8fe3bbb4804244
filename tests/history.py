"""Manifest history as an earlier job writes it: done records of chosen durations, for the tests of learned costs."""

from __future__ import annotations

from datetime import datetime, timezone

from gyre import Manifest, Pipeline
from gyre.workspace.manifest import ManifestRecord, config_fingerprint


def record_done(pipeline: Pipeline, phase_index: int, run: int, seconds: float, *, seed: int | None = None) -> None:
    """Write a done record of (phase, run) that took ``seconds``, as a job would."""
    phase = pipeline.phases[phase_index]
    fingerprint, facts = config_fingerprint(phase, seed=pipeline.seed if seed is None else seed)
    start = 1_700_000_000.0 + run
    Manifest(pipeline.workspace_path).write(
        ManifestRecord(
            phase=phase.name,
            run=run,
            status="done",
            fingerprint=f"earlier-{run}",
            config_fingerprint=fingerprint,
            input_fingerprint="earlier",
            config=facts,
            started=datetime.fromtimestamp(start, timezone.utc).isoformat(),
            finished=datetime.fromtimestamp(start + seconds, timezone.utc).isoformat(),
        )
    )
