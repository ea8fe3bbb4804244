"""Run discovery: which run files exist in an inclusive range, and how big they are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, NoRunsError

__all__ = [
    "RunFile",
    "RunSelection",
    "artifact_filename",
    "artifact_run",
    "discover_runs",
    "find_runs",
    "format_runs",
    "plural",
    "runs_phrase",
    "parse_run_list",
    "parse_run_range",
]


def artifact_filename(run: int) -> str:
    """The default file name of a run's artifact: ``run_0007.h5``."""
    return f"run_{run:04d}.h5"


@dataclass(frozen=True)
class RunFile:
    """One run's input file and its load estimate (the file size in bytes)."""

    run: int
    path: Path
    size: int


@dataclass(frozen=True)
class RunSelection:
    """The runs of a range: those found, those missing (no file) and those skipped on request."""

    found: tuple[RunFile, ...]
    missing: tuple[int, ...]
    skipped: tuple[int, ...]

    @property
    def runs(self) -> tuple[int, ...]:
        """The run numbers that will be processed, in run order."""
        return tuple(run.run for run in self.found)

    def largest_first(self) -> tuple[RunFile, ...]:
        """The found runs ordered by size, largest first (ties by run number)."""
        return tuple(sorted(self.found, key=lambda r: (-r.size, r.run)))


def discover_runs(
    trace_path: Path,
    run_min: int,
    run_max: int,
    *,
    pattern: str = "run_{run:04d}.h5",
    runs_to_skip: Iterable[int] | None = None,
) -> RunSelection:
    """Find the run files of the inclusive range ``run_min..run_max`` in ``trace_path``.

    Raises
    ------
    ConfigError
        The range is reversed or the run directory does not exist.
    NoRunsError
        Not a single run of the range has a file.
    """
    if run_min > run_max:
        raise ConfigError(f"run range {run_min}-{run_max} is reversed: run_min must be <= run_max")
    skip = set(runs_to_skip or ())
    wanted = range(run_min, run_max + 1)
    if all(run in skip for run in wanted):
        raise NoRunsError(f"every run of {run_min}-{run_max} is skipped on request: nothing to run")
    selection = find_runs(trace_path, [run for run in wanted if run not in skip], pattern=pattern)
    return RunSelection(found=selection.found, missing=selection.missing, skipped=tuple(r for r in wanted if r in skip))


def find_runs(trace_path: Path, runs: Iterable[int], *, pattern: str = "run_{run:04d}.h5") -> RunSelection:
    """Find the run files of ``runs`` (in that order, once each) in ``trace_path``: the one run-file finder.

    Raises
    ------
    ConfigError
        The run directory does not exist.
    NoRunsError
        Not a single one of the runs has a file.
    """
    trace_path = Path(trace_path)
    if not trace_path.is_dir():
        raise ConfigError(f"run directory {trace_path} does not exist or is not a directory")
    wanted = list(dict.fromkeys(runs))
    found: list[RunFile] = []
    missing: list[int] = []
    for run in wanted:
        path = trace_path / pattern.format(run=run)
        try:
            stat = path.stat()
        except FileNotFoundError:
            missing.append(run)
            continue
        found.append(RunFile(run=run, path=path, size=stat.st_size))
    if not found:
        looked = pattern.format(run=wanted[0]) if wanted else "nothing: no run asked for"
        raise NoRunsError(
            f"no run file of runs {format_runs(sorted(wanted)) or 'none'} exists in {trace_path} "
            f"(looked for names like {looked})"
        )
    return RunSelection(found=tuple(found), missing=tuple(missing), skipped=())


def artifact_run(name: str) -> int | None:
    """The run number of an artifact file name made by :func:`artifact_filename`, or ``None``."""
    stem, _, suffix = name.partition(".")
    if suffix != "h5" or not stem.startswith("run_") or not stem[4:].isdigit():
        return None
    return int(stem[4:])


def parse_run_range(text: str) -> tuple[int, int]:
    """Parse ``"1-400"`` into ``(1, 400)`` and ``"7"`` into ``(7, 7)``.

    Raises
    ------
    ConfigError
        Not a run or a range of runs, or a reversed range.
    """
    part = text.strip()
    low, sep, high = part.partition("-")
    try:
        first = int(low)
        last = int(high) if sep else first
    except ValueError as exc:
        raise ConfigError(f"cannot read {part!r} as a run or run range like 3 or 1-400") from exc
    if first > last:
        raise ConfigError(f"run range {part!r} is reversed")
    return first, last


def parse_run_list(text: str) -> list[int]:
    """Parse ``"1-5,9,12-13"`` into ``[1, 2, 3, 4, 5, 9, 12, 13]``."""
    runs: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, last = parse_run_range(part)
        runs.extend(range(first, last + 1))
    return runs


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, with an ``s`` unless there is exactly one: ``"1 run"``, ``"3 runs"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def duration_text(seconds: float, *, tenths_below: float = 0.0) -> str:
    """A span for people: ``"42 s"``, ``"12 min"``, ``"3.4 h"``; tenths of a second below ``tenths_below``."""
    if seconds < tenths_below:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def runs_phrase(runs: Sequence[int]) -> str:
    """``"run 7"`` or ``"runs 1-3,7"``: run numbers as ranges after the right word."""
    return f"run{'' if len(runs) == 1 else 's'} {format_runs(runs)}"


def format_runs(runs: Sequence[int]) -> str:
    """Sorted run numbers as ranges, the inverse of :func:`parse_run_list`: ``[1, 2, 3, 7]`` → ``"1-3,7"``."""
    parts: list[str] = []
    index = 0
    while index < len(runs):
        end = index
        while end + 1 < len(runs) and runs[end + 1] == runs[end] + 1:
            end += 1
        parts.append(str(runs[index]) if end == index else f"{runs[index]}-{runs[end]}")
        index = end + 1
    return ",".join(parts)
