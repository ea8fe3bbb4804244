"""The pictures of a job in time, as inline SVG: the worker timeline and the per-phase duration histograms.

Plain functions of a board's data (its ``bars``, :data:`~gyre.watch.board.BAR_FIELDS`, and its
running cells), drawn the same way on the live gyre page (by the scheduler, on each poll) and
in the static ``report.html``; no JavaScript and nothing fetched from the network.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .board import STATE_COLOURS

__all__ = ["PHASE_COLOURS", "histograms_svg", "phase_colour", "seconds_text", "timeline_svg", "worker_label"]

#: the colour of each phase, by its place in the pipeline (the timeline and the histograms)
PHASE_COLOURS = ("#3b6fb6", "#e08a2c", "#4f9d69", "#9c6ade", "#c7518c", "#2aa5a5", "#8c6d31", "#6b7bd6")
_OTHER = "#8a94a3"

_WIDTH = 1100
_LABEL = 170
_AXIS = 22


def phase_colour(phases: Sequence[str], phase: str) -> str:
    """The colour of ``phase`` (phases outside the pipeline, such as adaptive children's, are grey)."""
    try:
        return PHASE_COLOURS[list(phases).index(phase) % len(PHASE_COLOURS)]
    except ValueError:
        return _OTHER


def worker_label(worker: str) -> str:
    """A worker's address without its protocol (``tcp://10.0.0.5:4123`` → ``10.0.0.5:4123``)."""
    return worker.split("://", 1)[-1] if worker else "(driver)"


def seconds_text(value: float | None) -> str:
    """A duration as people read it: ``0.42 s``, ``12.3 s``, ``4.5 min``, ``2.1 h``."""
    if value is None:
        return ""
    if value < 10:
        return f"{value:.2f} s"
    if value < 100:
        return f"{value:.1f} s"
    if value < 6000:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _step(span: float, ticks: int = 8) -> float:
    """A round tick interval (1, 2 or 5 × 10^k seconds) giving about ``ticks`` ticks over ``span``."""
    raw = max(span, 1e-3) / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def _tick_text(value: float, step: float) -> str:
    if step >= 60 and value >= 60:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def timeline_svg(
    bars: Sequence[Sequence[Any]],
    running: Sequence[Mapping[str, Any]],
    *,
    phases: Sequence[str],
    start: float,
    end: float,
    max_bars: int = 20_000,
    detail: int = 800,
) -> str:
    """One row per worker, one bar per (phase, run) from its start to its end, coloured by phase.

    Failed bars have a red outline, cached ones are pale, running ones are hatched and reach
    ``end``. Up to ``detail`` finished bars, each is a ``rect`` with ``data-worker``,
    ``data-phase``, ``data-run``, ``data-status`` and a tooltip; past that, the bars of one
    worker, phase and status are one ``path`` (``data-bars`` says how many), a tenth of the
    size, so a 1,000-run job's picture stays small enough to send on every poll. Past
    ``max_bars`` finished bars only the latest are drawn, and the picture says so.
    """
    dropped = max(0, len(bars) - max_bars)
    shown = bars[dropped:]
    workers = sorted({str(bar[0]) for bar in shown} | {str(r.get("worker") or "") for r in running if r.get("worker")})
    if not workers:
        return '<div class="gyre-muted" id="gyre-timeline-empty">nothing has run on a worker yet</div>'
    if shown:
        start = min(start, min(float(bar[3]) for bar in shown))
        end = max(end, max(float(bar[4]) for bar in shown))
    span = max(end - start, 1e-3)
    row = max(3, min(18, 480 // len(workers)))
    height = row * len(workers) + _AXIS + 4
    scale = (_WIDTH - _LABEL - 10) / span
    index = {worker: i for i, worker in enumerate(workers)}
    parts = [
        f'<svg class="gyre-timeline" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" data-workers="{len(workers)}" data-bars="{len(shown)}" '
        f'data-detailed="{str(len(shown) <= detail).lower()}" '
        f'data-dropped="{dropped}" font-family="system-ui,sans-serif" font-size="11">'
    ]
    for worker, i in index.items():
        y = i * row
        shade = "#f3f4f6" if i % 2 else "#ffffff"
        parts.append(
            f'<g class="gyre-worker-row" data-worker="{escape(worker)}">'
            f'<rect x="{_LABEL}" y="{y}" width="{_WIDTH - _LABEL}" height="{row}" fill="{shade}"/>'
        )
        if row >= 9:
            parts.append(
                f'<text x="{_LABEL - 6}" y="{y + row * 0.75:.1f}" text-anchor="end" fill="#374151">'
                f"{escape(worker_label(worker))}</text>"
            )
        parts.append("</g>")
    pad = 1 if row >= 6 else 0
    if len(shown) > detail:
        parts.extend(_paths(shown, phases=phases, index=index, start=start, scale=scale, row=row, pad=pad))
        shown = []
    for bar in shown:
        worker, phase, run, began, ended, status = (
            str(bar[0]),
            str(bar[1]),
            bar[2],
            float(bar[3]),
            float(bar[4]),
            bar[5],
        )
        x, width = _span(began, ended, start=start, scale=scale)
        y = index[worker] * row + pad
        extra = _status_style(str(status))
        tooltip = f"run {run} · {phase} · {status} · {seconds_text(ended - began)} on {worker_label(worker)}"
        if len(bar) > 6 and bar[6]:
            tooltip += " (adaptive child)"
        parts.append(
            f'<rect class="gyre-bar-{escape(str(status))}" data-worker="{escape(worker)}" data-phase="{escape(phase)}" '
            f'data-run="{run}" data-status="{escape(str(status))}" x="{x:.1f}" y="{y}" width="{width:.1f}" '
            f'height="{row - 2 * pad}" fill="{phase_colour(phases, phase)}"{extra}>'
            f"<title>{escape(tooltip)}</title></rect>"
        )
    for cell in running:
        worker = str(cell.get("worker") or "")
        if worker not in index or cell.get("started") is None:
            continue
        since = float(cell["started"])
        x = _LABEL + (since - start) * scale
        width = max(1.0, (end - since) * scale)
        tooltip = f"run {cell['run']} · {cell['phase']} · running for {seconds_text(end - since)} on "
        tooltip += worker_label(worker)
        parts.append(
            f'<rect class="gyre-bar-running" data-worker="{escape(worker)}" data-phase="{escape(str(cell["phase"]))}" '
            f'data-run="{cell["run"]}" data-status="running" x="{x:.1f}" y="{index[worker] * row + pad}" '
            f'width="{width:.1f}" height="{row - 2 * pad}" fill="{phase_colour(phases, str(cell["phase"]))}" '
            f'fill-opacity="0.4" stroke="{STATE_COLOURS["running"]}" stroke-dasharray="3 2">'
            f"<title>{escape(tooltip)}</title></rect>"
        )
    axis = row * len(workers) + 2
    parts.append(f'<line x1="{_LABEL}" x2="{_WIDTH}" y1="{axis}" y2="{axis}" stroke="#9ca3af"/>')
    step = _step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = _LABEL + tick * scale
        anchor = "end" if x > _WIDTH - 30 else "middle"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis}" y2="{axis + 4}" stroke="#9ca3af"/>'
            f'<text x="{x:.1f}" y="{axis + 16}" text-anchor="{anchor}" fill="#6b7280">{_tick_text(tick, step)}</text>'
        )
        tick += step
    parts.append("</svg>")
    note = ""
    if dropped:
        note = f'<div class="gyre-muted">the {dropped} earliest (phase, run)s are not drawn</div>'
    return "".join(parts) + note


def _span(began: float, ended: float, *, start: float, scale: float) -> tuple[float, float]:
    """Where a bar starts and how wide it is, a hair narrower than its time so back-to-back bars show apart."""
    width = (ended - began) * scale
    return _LABEL + (began - start) * scale, width - 0.5 if width > 3 else max(1.0, width)


def _status_style(status: str) -> str:
    """How a bar's status changes its look: failed outlined in red, cached pale."""
    if status == "failed":
        return f' stroke="{STATE_COLOURS["failed"]}" stroke-width="2"'
    if status == "cached":
        return ' fill-opacity="0.45"'
    return ""


def _paths(
    bars: Sequence[Sequence[Any]],
    *,
    phases: Sequence[str],
    index: Mapping[str, int],
    start: float,
    scale: float,
    row: int,
    pad: int,
) -> list[str]:
    """The bars as one SVG path per worker, phase and status (one ``M…h…v…h…z`` per bar)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for bar in bars:
        worker, phase, began, ended, status = str(bar[0]), str(bar[1]), float(bar[3]), float(bar[4]), str(bar[5])
        x, width = _span(began, ended, start=start, scale=scale)
        y = index[worker] * row + pad
        height = row - 2 * pad
        groups.setdefault((worker, phase, status), []).append(f"M{x:.1f} {y}h{width:.1f}v{height}h-{width:.1f}z")
    parts = []
    for (worker, phase, status), shapes in sorted(groups.items()):
        extra = _status_style(status)
        tooltip = f"{phase} · {status} · {len(shapes)} (phase, run)s on {worker_label(worker)}"
        parts.append(
            f'<path data-worker="{escape(worker)}" data-phase="{escape(phase)}" data-status="{escape(status)}" '
            f'data-bars="{len(shapes)}" fill="{phase_colour(phases, phase)}"{extra} d="{"".join(shapes)}">'
            f"<title>{escape(tooltip)}</title></path>"
        )
    return parts


def histograms_svg(bars: Sequence[Sequence[Any]], *, phases: Sequence[str], bins: int = 20) -> str:
    """One small histogram per phase of how long its (phase, run)s took (those that ran and ended)."""
    durations: dict[str, list[float]] = {phase: [] for phase in phases}
    for bar in bars:
        if str(bar[1]) in durations and bar[5] in ("done", "failed") and not (len(bar) > 6 and bar[6]):
            durations[str(bar[1])].append(float(bar[4]) - float(bar[3]))
    width, height, base = 250, 110, 84
    parts = ['<div class="gyre-histograms">']
    for phase, values in durations.items():
        parts.append(
            f'<svg class="gyre-histogram" data-phase="{escape(phase)}" data-n="{len(values)}" '
            f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'font-family="system-ui,sans-serif" font-size="11">'
        )
        head = f"{phase} · {len(values)} ran"
        if values:
            head += f" · median {seconds_text(statistics.median(values))}"
        parts.append(f'<text x="2" y="11" fill="#1f2937" font-weight="600">{escape(head)}</text>')
        if not values:
            parts.append(f'<text x="5" y="{base - 30}" fill="#6b7280">none has ended yet</text>')
        if values:
            top = max(values)
            size = top / bins if top > 0 else 1.0
            counts = [0] * bins
            for value in values:
                counts[min(bins - 1, int(value / size))] += 1
            tallest = max(counts)
            slot = (width - 10) / bins
            for i, count in enumerate(counts):
                if not count:
                    continue
                h = (base - 18) * count / tallest
                low, high = i * size, (i + 1) * size
                parts.append(
                    f'<rect x="{5 + i * slot:.1f}" y="{base - h:.1f}" width="{slot - 1:.1f}" height="{h:.1f}" '
                    f'fill="{phase_colour(phases, phase)}" data-count="{count}"><title>{count} · '
                    f"{seconds_text(low)} – {seconds_text(high)}</title></rect>"
                )
            parts.append(
                f'<line x1="5" x2="{width - 5}" y1="{base}" y2="{base}" stroke="#9ca3af"/>'
                f'<text x="5" y="{base + 14}" fill="#6b7280">0</text>'
                f'<text x="{width - 5}" y="{base + 14}" text-anchor="end" fill="#6b7280">{seconds_text(top)}</text>'
            )
        parts.append("</svg>")
    parts.append("</div>")
    return "".join(parts)
