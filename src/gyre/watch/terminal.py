"""The terminal display: per-phase bars fed by outcomes, or periodic lines in batch logs."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO, Any

from ..progress import progress_cell
from ..result import TaskOutcome
from ..runs import plural

__all__ = ["TerminalDisplay"]


class TerminalDisplay:
    """Shows how far each phase has come while a pipeline runs.

    On a terminal: rich progress bars, one per phase (runs finished / total, failures in red)
    plus an overall bar with an ETA, and below them the in-run progress of the runs computing
    now (from ``ctx.progress``). Elsewhere (a Slurm log file): one compact line every
    ``interval`` seconds, from a timer (so long phases still show life), and one at the end.
    ``title`` (the pipeline and its runs) starts the header line. ``enabled=False`` shows
    nothing but still counts.
    """

    def __init__(
        self,
        phases: Sequence[str],
        n_runs: int,
        *,
        enabled: bool = True,
        title: str | None = None,
        stream: IO[str] | None = None,
        interval: float = 30.0,
        force_terminal: bool | None = None,
        max_running: int = 6,
    ) -> None:
        self.phases = list(phases)
        self.n_runs = n_runs
        self.enabled = enabled
        self.title = title
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.terminal = _isatty(self.stream) if force_terminal is None else force_terminal
        self.max_running = max_running
        self.counts: dict[str, Counter[str]] = {p: Counter() for p in self.phases}
        #: the latest ctx.progress message of each (phase, run) computing now
        self.running: dict[tuple[str, int], dict[str, Any]] = {}
        #: the latest ctx.progress message of every (phase, run) that reported, finished or not
        self.progress: dict[tuple[str, int], dict[str, Any]] = {}
        self._finished: set[tuple[str, int]] = set()
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._progress: Any = None
        self._bars: dict[str, Any] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def start(self, *, dashboard_link: str | None, execution: str, notes: Sequence[str] = ()) -> None:
        """Print the header (with the dashboard link or ``notes``, once) and open the bars or the timer."""
        self._started = time.monotonic()
        if not self.enabled:
            return
        size = f"{plural(self.n_runs, 'run')} × {plural(len(self.phases), 'phase')}"
        self._print(f"gyre: {self.title} ({size}) on {execution}" if self.title else f"gyre: {size} on {execution}")
        if dashboard_link and not notes:
            self._print(f"gyre: dask dashboard at {dashboard_link}")
        for note in notes:
            self._print(f"gyre: {note}")
        if self.terminal:
            self._open_bars()
        else:
            self._stop.clear()
            self._timer = threading.Thread(target=self._tick, name="gyre-display-lines", daemon=True)
            self._timer.start()

    def task_done(self, outcome: TaskOutcome) -> None:
        """Count an outcome and refresh the bars."""
        if outcome.lineage:  # adaptive children have their own counts, not the phase bars'
            return
        cell = (outcome.phase, outcome.run)
        with self._lock:
            self.counts.setdefault(outcome.phase, Counter())[outcome.status] += 1
            self.running.pop(cell, None)
            self._finished.add(cell)
        if not self.enabled or self._progress is None:
            return
        failed = self.counts[outcome.phase]["failed"]
        if outcome.phase in self._bars:
            self._progress.update(self._bars[outcome.phase], advance=1, failed=_red(failed))
        total_failed = sum(c["failed"] for c in self.counts.values())
        self._progress.update(self._bars["__all__"], advance=1, failed=_red(total_failed))

    def run_progress(self, message: dict[str, Any]) -> None:
        """Record in-run progress of a (phase, run) reported through ``ctx.progress``."""
        cell = progress_cell(message)
        if cell is None:
            return
        with self._lock:
            self.progress[cell] = message
            if cell not in self._finished:  # a late message must not revive a finished run
                self.running[cell] = message

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the (phase, run)s finished so far; ``None`` before the first."""
        with self._lock:
            finished = sum(sum(c.values()) for c in self.counts.values())
        total = self.n_runs * len(self.phases)
        if finished == 0 or total == 0:
            return None
        return max(0.0, (time.monotonic() - self._started) * (total - finished) / finished)

    def line(self) -> str:
        """A compact one-line state: per phase finished/total and failures, running runs, elapsed time, ETA."""
        with self._lock:
            parts = []
            for phase in self.phases:
                counts = self.counts[phase]
                text = f"{phase} {sum(counts.values())}/{self.n_runs}"
                if counts["failed"]:
                    text += f" ({counts['failed']} failed)"
                parts.append(text)
            running = [_short(m) for m in self._computing()]
            n_running = len(self.running)
        elapsed = time.monotonic() - self._started
        eta = self.eta()
        text = f"gyre [{elapsed:7.1f} s] " + " | ".join(parts)
        if eta is not None and eta > 0:  # none on the last line, when everything has finished
            text += f" | ETA {_duration(eta)}"
        if running:
            more = f" +{n_running - len(running)}" if n_running > len(running) else ""
            text += " | running: " + ", ".join(running) + more
        return text

    def stop(self) -> None:
        """Close the bars (or stop the timer and print the last line)."""
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        else:
            self._stop.set()
            if self._timer is not None:
                self._timer.join()
                self._timer = None
            self._print(self.line())

    def _open_bars(self) -> None:
        from rich.console import Console, Group, RenderableType
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        display = self

        class _Bars(Progress):
            def get_renderables(self) -> Iterator[RenderableType]:
                yield from super().get_renderables()
                yield display._running_table(Table, Group)

        console = Console(file=self.stream, force_terminal=True)
        self._progress = _Bars(
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

    def _running_table(self, table_type: Any, group_type: Any) -> Any:
        with self._lock:
            computing = self._computing()
            n_running = len(self.running)
        if not computing:
            return group_type()
        table = table_type.grid(padding=(0, 1))
        for message in computing:
            completed, total = message.get("completed") or 0, message.get("total")
            if total:
                filled = min(20, int(20 * completed / total))
                bar = "[blue]" + "━" * filled + "[/blue][dim]" + "━" * (20 - filled) + "[/dim]"
                amount = f"{completed}/{total}"
            else:
                bar, amount = "", str(completed) if completed else ""
            table.add_row(f"{message['phase']:>14}", f"run {message['run']}", bar, amount)
        if n_running > len(computing):
            table.add_row("", f"+{n_running - len(computing)} more", "", "")
        return table

    def _computing(self) -> list[dict[str, Any]]:
        """The runs computing now, those with the most progress first (call with the lock held)."""

        def fraction(message: dict[str, Any]) -> float:
            total = message.get("total")
            return (message.get("completed") or 0) / total if total else 0.0

        return sorted(self.running.values(), key=fraction, reverse=True)[: self.max_running]

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._print(self.line())

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _red(count: int) -> str:
    return f"[red]{count} failed[/red]" if count else ""


def _short(message: dict[str, Any]) -> str:
    """``phase#run`` and how far it is; no percentage before its first progress update.

    A run announces itself at 0 when it starts and reports again at most every half second,
    so a run shorter than that would always show 0% although it is well under way.
    """
    total, completed = message.get("total"), message.get("completed") or 0
    where = f"{message.get('phase')}#{message.get('run')}"
    return f"{where} {100 * completed / total:.0f}%" if total and completed else where


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
