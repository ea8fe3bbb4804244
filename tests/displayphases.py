"""Phases for the display tests: in-run progress reported at the top of a slow loop."""

from __future__ import annotations

import time

from toyphases import ScalePhase

from gyre import PhaseResult, RunContext


class SlowLoopScale(ScalePhase):
    """ScalePhase that first loops ``steps`` times, ``ctx.progress.update()`` at the top, then ``pause`` s of work."""

    def __init__(self, steps: int = 20, pause: float = 0.05, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.steps = steps
        self.pause = pause

    def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
        ctx.progress.set_total(self.steps)
        for _ in range(self.steps):
            ctx.progress.update()
            time.sleep(self.pause)
        return super().run(payload, ctx)
