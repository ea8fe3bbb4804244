"""Phases for the watching tests: in-run progress, a gate the test opens, a probe of the gyre page."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from toyphases import ScalePhase

from gyre import PhaseResult, RunContext


class CountingScale(ScalePhase):
    """ScalePhase that first reports ``units × run`` units of in-run progress, one update per unit."""

    def __init__(self, units: int = 300, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.units = units

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        ctx.progress.set_total(self.units * ctx.run)
        for _ in range(self.units * ctx.run):
            ctx.progress.update()
        return super().run(payload, ctx)


class GatedScale(ScalePhase):
    """ScalePhase that reports progress and then waits until the file ``gate`` exists (at most ``timeout`` s)."""

    def __init__(self, gate: Path, *, timeout: float = 120.0, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.gate = Path(gate)
        self.timeout = timeout

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        ctx.progress.set_total(10)
        ctx.progress.update(3)
        deadline = time.monotonic() + self.timeout
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        ctx.progress.update(7)
        return super().run(payload, ctx)


class ProbingScale(ScalePhase):
    """ScalePhase that, on run ``probe_run``, saves what ``url`` answers into ``<workspace>/probe.json``.

    It asks again (for up to 20 s) until the page shows this very (phase, run) as running.
    """

    def __init__(self, url: str, probe_run: int, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.url = url
        self.probe_run = probe_run

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        if ctx.run == self.probe_run:
            deadline = time.monotonic() + 20
            while True:
                with urllib.request.urlopen(self.url, timeout=30) as answer:
                    state = json.loads(answer.read())
                board = state.get("board") or {}
                column = board.get("runs", []).index(ctx.run) if ctx.run in board.get("runs", []) else -1
                if (column >= 0 and board["grid"][self.name][column] == "r") or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            (ctx.workspace / "probe.json").write_text(json.dumps(state))
        return super().run(payload, ctx)
