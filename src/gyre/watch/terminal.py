"""The terminal display: per-phase bars fed by outcomes, periodic lines in batch logs, a cell in a notebook."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from ..progress import progress_cell
from ..result import FailureGroup, Status, TaskOutcome, group_failures
from ..runs import duration_text, plural
from .failures import failure_line
from .notebook import NotebookView, in_notebook

__all__ = ["TerminalDisplay"]


class TerminalDisplay:
    """Shows how far each phase has come while a pipeline runs.

    On a terminal: rich progress bars, one per phase (runs finished / total, failures in red)
    plus an overall bar with an ETA, below them the in-run progress of the runs computing now
    (from ``ctx.progress``) and the failures, one line per group of alike failures. A bar
    counts the runs that finished a phase (done, cached or failed); runs skipped because an
    earlier phase failed are counted apart (``fit ━━━ 18/20 · 2 skipped``). In a Jupyter
    kernel (``notebook``, detected when ``None``): the same as an HTML table updated in place
    in the cell (:mod:`gyre.watch.notebook`). Elsewhere (a Slurm log file): one compact line
    every ``interval`` seconds, from a timer (so long phases still show life), and one at the
    end. ``title`` (the pipeline and its runs) starts the header line. ``enabled=False``
    shows nothing but still counts.
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
        notebook: bool | None = None,
        max_running: int = 6,
        weights: Mapping[tuple[str, int], float] | None = None,
    ) -> None:
        self.phases = list(phases)
        #: predicted seconds of each (phase, run) to compute (``gyre.job.costs``): the ETA weighs by them
        self.weights = dict(weights) if weights else None
        self._weight_total = sum(self.weights.values()) if self.weights else 0.0
        self._weight_done = 0.0
        self.n_runs = n_runs
        self.enabled = enabled
        self.title = title
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.terminal = _isatty(self.stream) if force_terminal is None else force_terminal
        if notebook is None:  # a kernel's stdout is no terminal, but it can show a live display
            notebook = stream is None and force_terminal is None and in_notebook()
        self.notebook = notebook
        self.width = max([len(p) for p in self.phases] + [3])  # phase names are never cut
        self.max_running = max_running
        self.counts: dict[str, Counter[str]] = {p: Counter() for p in self.phases}
        #: the latest ctx.progress message of each (phase, run) computing now
        self.running: dict[tuple[str, int], dict[str, Any]] = {}
        #: the latest ctx.progress message of every (phase, run) that reported, finished or not
        self.progress: dict[tuple[str, int], dict[str, Any]] = {}
        self._finished: set[tuple[str, int]] = set()
        self._failures: list[TaskOutcome] = []
        self._groups: list[FailureGroup] | None = []
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._progress: Any = None
        self._bars: dict[str, Any] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._view: NotebookView | None = None
        self._lines = False  # periodic lines are printed, and the last one is due at the end

    def start(
        self,
        *,
        dashboard_link: str | None,
        execution: str,
        notes: Sequence[str] = (),
        cached_only: int | None = None,
    ) -> None:
        """Print the header (with the dashboard link or ``notes``, once) and open the bars or the timer.

        ``cached_only`` (the count of cached (phase, run)s) says that nothing is computed and no
        cluster was started: the header says so instead of naming the execution, and no bars open.
        """
        self._started = time.monotonic()
        if not self.enabled:
            return
        if cached_only is not None:
            head = f"gyre: {self.title}: " if self.title else "gyre: "
            self._print(f"{head}nothing to compute: {cached_only} (phase, run)s cached; no cluster started")
            return
        size = f"{plural(self.n_runs, 'run')} × {plural(len(self.phases), 'phase')}"
        self._print(f"gyre: {self.title} ({size}) on {execution}" if self.title else f"gyre: {size} on {execution}")
        if dashboard_link and not notes:
            self._print(f"gyre: dask dashboard at {dashboard_link}")
        for note in notes:
            self._print(f"gyre: {note}")
        if self.notebook:
            self._view = NotebookView()
            self._view.show(self)
            self._start_timer(min(self.interval, 0.5), self._view_tick)
        elif self.terminal:
            self._open_bars()
        else:
            self._lines = True
            self._start_timer(self.interval, self._line_tick)

    def task_done(self, outcome: TaskOutcome) -> None:
        """Count an outcome and refresh the bars."""
        if outcome.lineage:  # adaptive children have their own counts, not the phase bars'
            return
        cell = (outcome.phase, outcome.run)
        with self._lock:
            self.counts.setdefault(outcome.phase, Counter())[outcome.status] += 1
            self.running.pop(cell, None)
            if self.weights and cell not in self._finished:
                self._weight_done += self.weights.get(cell, 0.0)
            self._finished.add(cell)
            if outcome.status == Status.FAILED:
                self._failures.append(outcome)
                self._groups = None  # regrouped when next shown, not on every failure
        if not self.enabled or self._progress is None:
            return
        # the bar fills with every (phase, run) settled, skipped ones too, so that a phase whose
        # last runs were skipped ends full; the count beside it leaves the skipped ones out
        counts = self.counts[outcome.phase]
        if outcome.phase in self._bars:
            self._progress.update(self._bars[outcome.phase], advance=1, **_fields(counts))
        every: Counter[str] = sum(self.counts.values(), Counter())
        self._progress.update(self._bars["__all__"], advance=1, **_fields(every))

    def run_progress(self, message: dict[str, Any]) -> None:
        """Record in-run progress of a (phase, run) reported through ``ctx.progress``."""
        cell = progress_cell(message)
        if cell is None:
            return
        with self._lock:
            self.progress[cell] = message
            if cell not in self._finished:  # a late message must not revive a finished run
                self.running[cell] = message

    def failure_groups(self) -> list[FailureGroup]:
        """The failures so far, alike ones grouped (``gyre.result.group_failures``), largest group first."""
        with self._lock:
            if self._groups is None:
                self._groups = group_failures(self._failures)
            return list(self._groups)

    def phase_counts(self) -> list[tuple[str, int, int, int]]:
        """Per phase: (name, runs finished, of which failed, runs skipped); finished counts done, cached and failed."""
        with self._lock:
            counts = [(phase, self.counts[phase]) for phase in self.phases]
            return [(phase, _finished(c), c[Status.FAILED], c[Status.SKIPPED]) for phase, c in counts]

    def running_now(self) -> tuple[list[dict[str, Any]], int]:
        """The in-run progress messages of the runs computing now (most advanced first, at most
        ``max_running``) and how many are computing in all."""
        with self._lock:
            return self._computing(), len(self.running)

    def elapsed(self) -> float:
        """Seconds since the display started."""
        return time.monotonic() - self._started

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the (phase, run)s finished so far (weighed by their predicted
        cost when ``weights`` are known); ``None`` before the first."""
        with self._lock:
            finished = sum(sum(c.values()) for c in self.counts.values())
            done = self._weight_done
        if done > 0:
            return max(0.0, (time.monotonic() - self._started) * (self._weight_total - done) / done)
        total = self.n_runs * len(self.phases)
        if finished == 0 or total == 0:
            return None
        return max(0.0, (time.monotonic() - self._started) * (total - finished) / finished)

    def line(self) -> str:
        """A compact one-line state: per phase finished/total, failures and skipped, running runs, elapsed time, ETA."""
        parts = []
        for phase, finished, failed, skipped in self.phase_counts():
            text = f"{phase} {finished}/{self.n_runs}"
            if failed:
                text += f" ({failed} failed)"
            if skipped:
                text += f" · {skipped} skipped"
            parts.append(text)
        computing, n_running = self.running_now()
        running = [_short(m) for m in computing]
        elapsed = self.elapsed()
        eta = self.eta()
        text = f"gyre [{elapsed:7.1f} s] " + " | ".join(parts)
        if eta is not None and eta > 0:  # none on the last line, when everything has finished
            text += f" | ETA {duration_text(eta)}"
        if running:
            more = f" +{n_running - len(running)}" if n_running > len(running) else ""
            text += " | running: " + ", ".join(running) + more
        return text

    def stop(self) -> None:
        """Close the bars (or stop the timer and print the last line)."""
        if not self.enabled:
            return
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self._view is not None:
            self._view.update(self)
            self._view = None
        elif self._lines:
            self._lines = False
            self._print(self.line())

    def _open_bars(self) -> None:
        from rich.console import Console, Group, RenderableType
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        display = self

        class _Bars(Progress):
            def get_renderables(self) -> Iterator[RenderableType]:
                yield from super().get_renderables()
                yield display._running_table(Table, Group)

        console = Console(file=self.stream, force_terminal=True)
        self._progress = _Bars(
            TextColumn(f"{{task.description:>{self.width}}}"),
            BarColumn(),
            TextColumn("{task.fields[finished]:>{task.fields[digits]}}/{task.total:.0f}"),
            TextColumn("{task.fields[skipped]}"),
            TextColumn("{task.fields[failed]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        for phase in self.phases:
            self._bars[phase] = self._progress.add_task(
                phase, total=self.n_runs, digits=len(str(self.n_runs)), **_fields(Counter())
            )
        total = self.n_runs * len(self.phases)
        self._bars["__all__"] = self._progress.add_task(
            "all", total=total, digits=len(str(total)), **_fields(Counter())
        )
        self._progress.start()

    def _running_table(self, table_type: Any, group_type: Any) -> Any:
        computing, n_running = self.running_now()
        groups = self.failure_groups()
        if not computing and not groups:
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
            table.add_row(f"{message['phase']:>{self.width}}", f"run {message['run']}", bar, amount)
        if n_running > len(computing):
            table.add_row("", f"+{n_running - len(computing)} more", "", "")
        failures = table_type.grid(padding=(0, 1))
        failures.add_column(no_wrap=True)
        failures.add_column(no_wrap=True, overflow="ellipsis")  # one line per kind of failure, however long
        for group in groups[: self.max_running]:
            failures.add_row(f"[red]{group.phase:>{self.width}}[/red]", failure_line(group))
        if len(groups) > self.max_running:
            failures.add_row("", f"+{len(groups) - self.max_running} more kinds of failure")
        return group_type(table, failures)

    def _computing(self) -> list[dict[str, Any]]:
        """The runs computing now, those with the most progress first (call with the lock held)."""

        def fraction(message: dict[str, Any]) -> float:
            total = message.get("total")
            return (message.get("completed") or 0) / total if total else 0.0

        return sorted(self.running.values(), key=fraction, reverse=True)[: self.max_running]

    def _start_timer(self, interval: float, tick: Any) -> None:
        self._stop.clear()
        self._timer = threading.Thread(target=tick, args=(interval,), name="gyre-display", daemon=True)
        self._timer.start()

    def _line_tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._print(self.line())

    def _view_tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            view = self._view
            if view is not None:
                view.update(self)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _finished(counts: Counter[str]) -> int:
    return counts[Status.DONE] + counts[Status.CACHED] + counts[Status.FAILED]


def _fields(counts: Counter[str]) -> dict[str, Any]:
    """What a bar shows beside it: runs finished (done, cached, failed), failed ones in red, skipped ones dim."""
    return {"finished": _finished(counts), "failed": _red(counts), "skipped": _dim(counts)}


def _red(counts: Counter[str]) -> str:
    count = counts[Status.FAILED]
    return f"[red]{count} failed[/red]" if count else ""


def _dim(counts: Counter[str]) -> str:
    count = counts[Status.SKIPPED]
    return f"[dim]· {count} skipped[/dim]" if count else ""


def _short(message: dict[str, Any]) -> str:
    """``phase#run`` and how far it is; no percentage before its first progress update.

    A run announces itself at 0 when it starts and reports again at most every half second,
    so a run shorter than that would always show 0% although it is well under way.
    """
    total, completed = message.get("total"), message.get("completed") or 0
    where = f"{message.get('phase')}#{message.get('run')}"
    return f"{where} {100 * completed / total:.0f}%" if total and completed else where


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
