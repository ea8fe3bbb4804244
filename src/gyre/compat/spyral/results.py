"""Spyral's ``PhaseResult`` and ``ResultSchema`` on gyre's side, and back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...result import PhaseResult
from ...schema import Schema

__all__ = ["RUN_ARTIFACT", "TRACE_ARTIFACT", "SpyralSchema", "from_spyral_result", "to_spyral_result"]

#: the artifact name of the run file in gyre's first payload
RUN_ARTIFACT = "run"
#: the artifact name of the run (trace) file in Spyral's first payload
TRACE_ARTIFACT = "trace"


def to_spyral_result(result: PhaseResult) -> Any:
    """A gyre ``PhaseResult`` as Spyral's ``PhaseResult`` (``artifacts``, ``successful``, ``run_number``).

    gyre's first payload names the run file ``"run"``; Spyral's first phase reads it as
    ``"trace"``, so that one name is translated.
    """
    from spyral.core.schema import PhaseResult as SpyralResult

    artifacts = {name: Path(path) for name, path in result.artifacts.items()}
    if set(artifacts) == {RUN_ARTIFACT}:
        artifacts = {TRACE_ARTIFACT: artifacts[RUN_ARTIFACT]}
    return SpyralResult(artifacts=artifacts, successful=bool(result.successful), run_number=int(result.run))


def from_spyral_result(result: Any, *, metadata: Mapping[str, Any] | None = None) -> PhaseResult:
    """Spyral's ``PhaseResult`` as a gyre ``PhaseResult``.

    Raises
    ------
    TypeError
        ``result`` does not look like Spyral's ``PhaseResult``.
    """
    artifacts = getattr(result, "artifacts", None)
    run = getattr(result, "run_number", None)
    if not isinstance(artifacts, Mapping) or not isinstance(run, int) or not hasattr(result, "successful"):
        raise TypeError(
            "expected Spyral's PhaseResult (artifacts, successful, run_number), "
            f"got {type(result).__name__}: {result!r}"
        )
    return PhaseResult(
        artifacts={str(name): Path(path) for name, path in artifacts.items()},
        run=run,
        successful=bool(result.successful),
        metadata=dict(metadata or {}),
    )


@dataclass(frozen=True)
class SpyralSchema(Schema):
    """Spyral's ``ResultSchema`` as a gyre ``Schema``: artifact name → ``{"extension", "data"}``.

    Two Spyral schemas fit only when they are equal, as in Spyral's own ``validate``; the
    differences name each artifact that is missing, extra or described differently.
    """

    artifacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        plain = {str(k): {"extension": v.get("extension"), "data": v.get("data")} for k, v in self.artifacts.items()}
        object.__setattr__(self, "artifacts", plain)
        object.__setattr__(self, "datasets", dict.fromkeys(plain))
        super().__post_init__()

    @classmethod
    def from_spyral(cls, schema: Any) -> SpyralSchema | None:
        """Convert a Spyral ``ResultSchema`` (``None`` stays ``None``: no check, as in Spyral)."""
        if schema is None:
            return None
        artifacts = getattr(schema, "artifacts", None) or {}
        return cls(artifacts={k: {"extension": a.extension, "data": a.data} for k, a in artifacts.items()})

    def differences(self, consumer: Schema) -> list[str]:
        """What ``consumer`` expects that this schema does not give exactly; empty if they are equal."""
        if not isinstance(consumer, SpyralSchema):
            return super().differences(consumer)
        problems = []
        for name in sorted(set(self.artifacts) | set(consumer.artifacts)):
            given, needed = self.artifacts.get(name), consumer.artifacts.get(name)
            if given is None:
                problems.append(f"artifact {name!r} is expected but not given (given: {', '.join(self.artifacts)})")
            elif needed is None:
                problems.append(f"artifact {name!r} is given but not expected (Spyral schemas must be equal)")
            elif given != needed:
                problems.append(
                    f"artifact {name!r} is described differently: given {_short(given)}, expected {_short(needed)}"
                )
        return problems

    def file_differences(self, path: Path) -> list[str]:
        """Spyral schemas describe layouts gyre cannot check dataset by dataset: nothing to report."""
        return []

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_schema, (json.dumps(self.artifacts),))


def _rebuild_schema(artifacts: str) -> SpyralSchema:
    return SpyralSchema(artifacts=json.loads(artifacts))


def _short(value: Mapping[str, Any], limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
