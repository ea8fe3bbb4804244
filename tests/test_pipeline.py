"""Pipeline construction, validation and assets: clear errors before any compute."""

from __future__ import annotations

from pathlib import Path

import pytest
from toyphases import ScalePhase, StatPhase, SumPhase

from gyre import (
    AssetError,
    ConfigError,
    Phase,
    PhaseResult,
    Pipeline,
    RunContext,
    Schema,
    SchemaMismatchError,
)


def test_empty_phase_list(tmp_path):
    with pytest.raises(ConfigError, match="at least one phase"):
        Pipeline([], [], tmp_path, tmp_path)


def test_active_of_the_wrong_length(tmp_path):
    with pytest.raises(ConfigError, match="2 switches for 3 phases"):
        Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True, True], tmp_path, tmp_path)


def test_duplicate_names(tmp_path):
    with pytest.raises(ConfigError, match="repeated: scale"):
        Pipeline([ScalePhase(), ScalePhase()], [True, True], tmp_path, tmp_path)


def test_unusable_names(tmp_path):
    class Nameless(SumPhase):
        name = ""

    with pytest.raises(ConfigError, match="has no name"):
        Pipeline([Nameless()], [True], tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="cannot name a workspace directory"):
        Pipeline([SumPhase("a/b")], [True], tmp_path, tmp_path)


def test_not_a_phase(tmp_path):
    with pytest.raises(ConfigError, match="not a gyre Phase"):
        Pipeline([object()], [True], tmp_path, tmp_path)  # type: ignore[list-item]


def test_validate_names_both_phases_and_the_difference(tmp_path):
    class Needs(SumPhase):
        name = "needs"
        incoming_schema = Schema({"energy": "float64"})

    pipeline = Pipeline([ScalePhase(), Needs()], [True, True], tmp_path, tmp_path)
    with pytest.raises(SchemaMismatchError) as info:
        pipeline.validate()
    assert info.value.producer == "scale" and info.value.consumer == "needs"
    assert "'energy' is needed but not given (given: scaled)" in str(info.value)


def test_phases_without_schema_pass(tmp_path):
    class Free(Phase):
        name = "free"

        def run(self, payload: PhaseResult, ctx: RunContext) -> PhaseResult:
            return payload

    Pipeline([ScalePhase(), Free(), StatPhase()], [True] * 3, tmp_path, tmp_path).validate()


def test_asset_failure_names_the_phase(tmp_path):
    class NoTable(SumPhase):
        def create_assets(self, workspace: Path) -> bool:
            return False

    class Broken(StatPhase):
        def create_assets(self, workspace: Path) -> bool:
            raise RuntimeError("mesh solver diverged")

    pipeline = Pipeline([NoTable()], [True], tmp_path / "ws", tmp_path)
    pipeline.create_workspace()
    with pytest.raises(AssetError, match="'sum' reported failure"):
        pipeline.create_assets()
    pipeline = Pipeline([Broken()], [True], tmp_path / "ws", tmp_path)
    pipeline.create_workspace()
    with pytest.raises(AssetError, match="'stat' failed to create its assets.*mesh solver diverged") as info:
        pipeline.create_assets()
    assert isinstance(info.value.__cause__, RuntimeError)


def test_inactive_phase_assets_are_not_built(tmp_path):
    pipeline = Pipeline([ScalePhase(), SumPhase(), StatPhase()], [True, True, False], tmp_path / "ws", tmp_path)
    pipeline.create_workspace()
    pipeline.create_assets()
    assert not (tmp_path / "ws/stat_assets/weights.npy").exists()


def test_workspace_layout(tmp_path):
    pipeline = Pipeline([ScalePhase(), SumPhase()], [True, False], tmp_path / "ws", tmp_path)
    pipeline.create_workspace()
    for sub in ("scale", "scale_assets", "sum", "sum_assets", "log"):
        assert (tmp_path / "ws" / sub).is_dir()
    phase = pipeline.phase("sum")
    assert phase.artifact_path(tmp_path, 7) == tmp_path / "sum" / "run_0007.h5"
    default = phase.construct_artifact(PhaseResult({}, run=7), tmp_path)
    assert default.path == tmp_path / "sum" / "run_0007.h5"


def test_unwritable_workspace(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot create the workspace"):
        Pipeline([ScalePhase()], [True], blocker / "ws", tmp_path).create_workspace()
