"""Run discovery: which run files exist in an inclusive range, and how big they are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, NoRunsError

__all__ = ["RunFile", "RunSelection", "artifact_filename", "discover_runs", "format_runs", "parse_run_list"]


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
    trace_path = Path(trace_path)
    if run_min > run_max:
        raise ConfigError(f"run range {run_min}-{run_max} is reversed: run_min must be <= run_max")
    if not trace_path.is_dir():
        raise ConfigError(f"run directory {trace_path} does not exist or is not a directory")
    skip = set(runs_to_skip or ())
    found: list[RunFile] = []
    missing: list[int] = []
    skipped: list[int] = []
    for run in range(run_min, run_max + 1):
        if run in skip:
            skipped.append(run)
            continue
        path = trace_path / pattern.format(run=run)
        try:
            stat = path.stat()
        except FileNotFoundError:
            missing.append(run)
            continue
        found.append(RunFile(run=run, path=path, size=stat.st_size))
    if not found:
        example = trace_path / pattern.format(run=run_min)
        raise NoRunsError(
            f"no run file of runs {run_min}-{run_max} exists in {trace_path} "
            f"(looked for names like {example.name}; {len(skipped)} runs skipped on request)"
        )
    return RunSelection(found=tuple(found), missing=tuple(missing), skipped=tuple(skipped))


def parse_run_list(text: str) -> list[int]:
    """Parse ``"1-5,9,12-13"`` into ``[1, 2, 3, 4, 5, 9, 12, 13]``."""
    runs: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, sep, high = part.partition("-")
        try:
            if sep:
                first, last = int(low), int(high)
                if first > last:
                    raise ConfigError(f"run range {part!r} is reversed")
                runs.extend(range(first, last + 1))
            else:
                runs.append(int(part))
        except ValueError as exc:
            raise ConfigError(f"cannot read {part!r} as a run or run range like 3 or 1-400") from exc
    return runs


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
