"""The terminal display: per-phase bars fed by outcomes, or periodic lines in batch logs."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import IO, Any

from .outcome import TaskOutcome

__all__ = ["TerminalDisplay"]


class TerminalDisplay:
    """Shows how far each phase has come while a pipeline runs.

    On a terminal: rich progress bars, one per phase plus an overall bar with an ETA.
    Elsewhere (a Slurm log file): one compact line every ``interval`` seconds and at the end.
    ``enabled=False`` shows nothing.
    """

    def __init__(
        self,
        phases: Sequence[str],
        n_runs: int,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval: float = 30.0,
        force_terminal: bool | None = None,
    ) -> None:
        self.phases = list(phases)
        self.n_runs = n_runs
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.terminal = self.stream.isatty() if force_terminal is None else force_terminal
        self.counts: dict[str, Counter[str]] = {p: Counter() for p in self.phases}
        self.running: dict[tuple[str, int], dict[str, Any]] = {}
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._progress: Any = None
        self._bars: dict[str, Any] = {}
        self._next_line = 0.0

    def start(self, *, dashboard_link: str | None, execution: str) -> None:
        """Print the header (with the dashboard link, once) and open the bars."""
        self._started = time.monotonic()
        if not self.enabled:
            return
        self._print(f"gyre: {self.n_runs} runs × {len(self.phases)} phases on {execution}")
        if dashboard_link:
            self._print(f"gyre: dask dashboard at {dashboard_link}")
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(file=self.stream, force_terminal=True)
            self._progress = Progress(
                TextColumn("{task.description:>14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]}"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            for phase in self.phases:
                self._bars[phase] = self._progress.add_task(phase, total=self.n_runs, failed="")
            self._bars["__all__"] = self._progress.add_task("all", total=self.n_runs * len(self.phases), failed="")
            self._progress.start()
        else:
            self._next_line = time.monotonic() + self.interval

    def task_done(self, outcome: TaskOutcome) -> None:
        """Count an outcome and refresh the display."""
        with self._lock:
            self.counts.setdefault(outcome.phase, Counter())[outcome.status] += 1
            self.running.pop((outcome.phase, outcome.run), None)
        if not self.enabled:
            return
        if self._progress is not None:
            failed = self.counts[outcome.phase]["failed"]
            label = f"[red]{failed} failed[/red]" if failed else ""
            if outcome.phase in self._bars:
                self._progress.update(self._bars[outcome.phase], advance=1, failed=label)
            total_failed = sum(c["failed"] for c in self.counts.values())
            self._progress.update(
                self._bars["__all__"],
                advance=1,
                failed=f"[red]{total_failed} failed[/red]" if total_failed else "",
            )
        elif time.monotonic() >= self._next_line:
            self._next_line = time.monotonic() + self.interval
            self._print(self.line())

    def run_progress(self, message: dict[str, Any]) -> None:
        """Record in-run progress of a (phase, run) reported through ``ctx.progress``."""
        with self._lock:
            self.running[(str(message.get("phase")), int(message.get("run", -1)))] = message

    def line(self) -> str:
        """A compact one-line state: per phase done/total and failures, elapsed time."""
        with self._lock:
            parts = []
            for phase in self.phases:
                counts = self.counts[phase]
                finished = sum(counts.values())
                text = f"{phase} {finished}/{self.n_runs}"
                if counts["failed"]:
                    text += f" ({counts['failed']} failed)"
                parts.append(text)
        elapsed = time.monotonic() - self._started
        return f"gyre [{elapsed:7.1f} s] " + " | ".join(parts)

    def stop(self) -> None:
        """Close the bars (or print the last line)."""
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        else:
            self._print(self.line())

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
