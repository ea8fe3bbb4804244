"""PhaseResult: what one phase hands the next for one run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["PhaseResult"]


@dataclass(frozen=True)
class PhaseResult:
    """The artifacts one phase produced for one run, and whether they are usable.

    Parameters
    ----------
    artifacts
        Name → path of each file the phase wrote (or, for the first phase, the run file
        under the name ``"run"``).
    run
        The run number.
    successful
        ``False`` marks a result the phase itself judged invalid: the run fails there
        and its later phases are skipped.
    metadata
        Small JSON-able facts about the result (counts, fit quality); shown in the report.
    """

    artifacts: Mapping[str, Path]
    run: int
    successful: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        paths = {str(k): Path(v) for k, v in dict(self.artifacts).items()}
        object.__setattr__(self, "artifacts", MappingProxyType(paths))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def path(self) -> Path:
        """The one artifact's path; an error if there is not exactly one."""
        if len(self.artifacts) != 1:
            names = ", ".join(self.artifacts) or "none"
            raise ValueError(f"run {self.run} has {len(self.artifacts)} artifacts ({names}); index .artifacts by name")
        return next(iter(self.artifacts.values()))

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (dict(self.artifacts), self.run, self.successful, dict(self.metadata)),
        )


def _rebuild(artifacts: dict[str, Path], run: int, successful: bool, metadata: dict[str, Any]) -> PhaseResult:
    return PhaseResult(artifacts=artifacts, run=run, successful=successful, metadata=metadata)
