"""gyre under a real one-node Slurm: the batch scripts of ``gyre init``, walltime and scancel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_test_slurm_runs_a_job(slurm, tmp_path):
    script = tmp_path / "hello.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --ntasks=4\nsrun hostname > hosts.txt\necho done\n")
    job = slurm.sbatch(script, "--output=hello-%j.out", cwd=tmp_path)
    fields = slurm.wait(job, timeout=60)
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", fields
    assert (tmp_path / "hosts.txt").read_text().splitlines() == [slurm.node] * 4
    assert (tmp_path / f"hello-{job}.out").read_text() == "done\n"


def _init_analysis(tmp_path: Path, n_runs: int = 10) -> Path:
    """``gyre init`` an analysis directory (with this environment's gyre) and give it ``n_runs`` run files."""
    analysis = tmp_path / "analysis"
    done = subprocess.run(
        [sys.executable, "-m", "gyre.cli", "init", str(analysis)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(EXAMPLES / "detector"))
    try:
        from generate import generate_runs
    finally:
        sys.path.pop(0)
    generate_runs(analysis / "runs", n_runs, mean_events=4)
    return analysis


def _report(analysis: Path) -> dict:
    return json.loads((analysis / "workspace" / "report.json").read_text())


@pytest.mark.parametrize("template", ["slurm_mpi.sbatch", "slurm_scheduler_file.sbatch"])
def test_the_init_templates_run_as_written(slurm, tmp_path, template):
    analysis = _init_analysis(tmp_path)
    script = analysis / template
    text = script.read_text()
    assert "@ANALYSIS_DIR@" not in text and "@GYRE_ENV@" not in text
    assert f"#SBATCH --chdir={analysis}\n" in text and f'export PATH="{sys.prefix}/bin:$PATH"' in text
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # submitted from another directory, sized on the command line only
    job = slurm.sbatch(script, "--time=00:05:00", "--mem-per-cpu=500M", cwd=elsewhere)
    fields = slurm.wait(job, timeout=150)
    log = analysis / f"gyre-{job}.out"
    assert log.exists(), f"no job log in {analysis}: {sorted(p.name for p in analysis.iterdir())}"
    text = log.read_text()
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", f"{fields}\n{text}"
    report = _report(analysis)
    assert report["ok"] is True and report["interrupted"] is False
    assert {(r["phase"], r["status"]) for r in report["records"]} == {("peaks", "done"), ("summary", "done")}
    assert len(report["records"]) == 20
    assert (analysis / "workspace" / "report.html").exists()
    assert "my-analysis: 10/10 runs complete" in text, text
    assert not list(elsewhere.iterdir()), "the job wrote into the directory sbatch was called from"
    assert not list(analysis.glob("scheduler-*.json")), "the per-job scheduler file is left behind"


def test_the_scheduler_file_template_sets_the_quiet_worker_settings():
    from gyre.cli import TEMPLATE
    from gyre.execution.tuning import QUIET_WORKER_CONFIG

    text = (TEMPLATE / "slurm_scheduler_file.sbatch").read_text()
    exported = dict(re.findall(r"^export DASK_(\w+)=(\S+)$", text, flags=re.MULTILINE))
    expected = {
        key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in QUIET_WORKER_CONFIG.items()
    }
    assert expected.items() <= exported.items()
    assert exported["DISTRIBUTED__SCHEDULER__WORKER_SATURATION"] == "1.0"


def test_scancel_of_an_mpi_job_writes_the_report(slurm, tmp_path):
    from faultphases import gyre_env, pipeline_module, wait_for
    from toyphases import make_run_files

    from gyre import Manifest

    make_run_files(tmp_path / "runs", list(range(1, 15)), events=2000)
    workspace = tmp_path / "ws"
    module = pipeline_module(tmp_path, workspace, tmp_path / "runs", delay=0.5)
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --ntasks=4\n#SBATCH --output=job-%j.out\n"
        f'exec "{Path(sys.executable).parent}/mpiexec" -n 4 "{sys.executable}" -m gyre.cli run {module}:pipeline '
        "--runs=1-14 --mpi\n"
    )
    job = slurm.sbatch(script, cwd=tmp_path, env={"PYTHONPATH": gyre_env()["PYTHONPATH"]})
    wait_for(lambda: len(list(Manifest(workspace).records("stat"))) >= 3, 90, "three finished runs")
    slurm.run(["scancel", "--batch", "--signal=TERM", str(job)])
    fields = slurm.wait(job, timeout=30)
    log = (tmp_path / f"job-{job}.out").read_text()
    assert fields["ExitCode"] == "143:0" or fields["ExitCode"].startswith("143"), f"{fields}\n{log}"
    report = json.loads((workspace / "report.json").read_text())
    assert report["interrupted"] is True, log
    assert not (workspace / ".gyre" / "lock.json").exists()
    assert "second SIGTERM" not in log, log
