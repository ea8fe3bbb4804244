"""What a new user meets first: a script without the ``__main__`` guard, and habits from other frameworks."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from toyphases import ScalePhase, SumPhase, make_run_files

from gyre import ConfigError, LocalModel, PhaseResult, Pipeline, SyncModel
from gyre.launch.guard import _guarded, refuse_unguarded_main

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from toyphases import ScalePhase
from gyre import Pipeline, start_pipeline

pipeline = Pipeline([ScalePhase()], [True], "ws", "runs", seed=1)
{call}
"""


def script(tmp_path: Path, call: str) -> subprocess.CompletedProcess[str]:
    make_run_files(tmp_path / "runs", [1, 2])
    path = tmp_path / "analysis.py"
    path.write_text(SCRIPT.format(tests=str(Path(__file__).parent), call=call))
    return subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def test_a_script_without_the_main_guard_is_told_so_in_one_line(tmp_path):
    done = script(tmp_path, "report = start_pipeline(pipeline, 1, 2, n_procs=2, disable_display=True)")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("gyre.errors.ConfigError: start_pipeline is called at the top level of ")
    assert 'without `if __name__ == "__main__":`' in last and "put the call under that guard" in last
    assert "Locked" not in done.stderr and "Nanny" not in done.stderr
    assert not (tmp_path / "ws").exists()  # refused before anything was made


@pytest.mark.slow
def test_a_guarded_script_runs_on_a_local_cluster(tmp_path):
    call = (
        "def main():\n"
        "    return start_pipeline(pipeline, 1, 2, n_procs=1, disable_display=True)\n\n"
        'if __name__ == "__main__":\n'
        "    assert main().ok\n"
    )
    done = script(tmp_path, call)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "ws/scale").glob("run_*.h5"))) == 2


def test_a_worker_importing_the_script_is_told_so(monkeypatch):
    worker_main = types.ModuleType("__mp_main__")
    worker_main.__file__ = "/home/someone/analysis.py"
    monkeypatch.setitem(sys.modules, "__main__", worker_main)
    with pytest.raises(ConfigError, match=r"a worker process is importing that script again"):
        refuse_unguarded_main(LocalModel(1))
    refuse_unguarded_main(SyncModel())  # nothing is spawned: nothing to say


def test_spyral_habits_on_the_native_api(tmp_path):
    result = PhaseResult(artifacts={"cloud": tmp_path / "c.h5"}, successful=True, run_number=7)
    assert result.run == 7 and result.run_number == 7 and result == PhaseResult({"cloud": tmp_path / "c.h5"}, 7)
    with pytest.raises(TypeError, match="gyre's order is \\(artifacts, run, successful, metadata\\)"):
        PhaseResult({"cloud": tmp_path / "c.h5"}, True, 7)  # Spyral's positional order
    with pytest.raises(TypeError, match="give one run number"):
        PhaseResult({}, 3, run_number=4)
    with pytest.raises(TypeError, match="needs the run number"):
        PhaseResult({})
    pipeline = Pipeline([ScalePhase(), SumPhase()], [True, True], tmp_path / "ws", tmp_path / "runs")
    assert pipeline.workspace == tmp_path / "ws" and pipeline.traces == tmp_path / "runs"
    pipeline.traces = str(tmp_path / "elsewhere")
    assert pipeline.trace_path == tmp_path / "elsewhere"
    pipeline.create_workspace()
    if not pipeline.create_assets():  # Spyral's idiom
        pytest.fail("create_assets() must return True once the assets are built")


@pytest.mark.parametrize(
    ("source", "line", "guarded"),
    [
        ("start()\n", 1, False),
        ('if __name__ == "__main__":\n    start()\n', 2, True),
        ('if "__main__" == __name__ and ready:\n    start()\n', 2, True),
        ('try:\n    if __name__ == "__main__":\n        start()\nexcept ValueError:\n    pass\n', 3, True),
        ("try:\n    start()\nexcept ValueError:\n    pass\n", 2, False),
        ('with open("x") as f:\n    start()\n', 2, False),
        ("def main():\n    start()\n\nmain()\n", 4, False),
    ],
)
def test_the_guard_is_read_from_the_scripts_source(tmp_path, source, line, guarded):
    path = tmp_path / "analysis.py"
    path.write_text(source)
    assert _guarded(path, line) is guarded
