"""The deadline under a real one-node Slurm: the job's end time, and the init template resubmitting itself."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_driver_finds_its_slurm_jobs_end_time(slurm, tmp_path):
    from faultphases import gyre_env

    script = tmp_path / "end.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --time=3\n#SBATCH --output=end-%j.out\n"
        f'"{sys.executable}" -c "from gyre.job.deadline import slurm_end_time; print(int(slurm_end_time()))"\n'
    )
    job = slurm.sbatch(script, cwd=tmp_path, env={"PYTHONPATH": gyre_env()["PYTHONPATH"]})
    fields = slurm.wait_for_state(job, ["RUNNING"], timeout=60)
    start = _epoch(fields["StartTime"])
    fields = slurm.wait(job, timeout=60)
    output = (tmp_path / f"end-{job}.out").read_text()
    assert fields["ExitCode"] == "0:0", f"{fields}\n{output}"
    assert int(output.split()[-1]) == start + 3 * 60, output


def _epoch(text: str) -> int:
    """A time as ``scontrol`` prints it (local time) as epoch seconds."""
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp())


def _logged_at(path: Path, *texts: str) -> float:
    """When the first line of ``path`` containing one of ``texts`` was logged (epoch seconds)."""
    from datetime import datetime

    for line in path.read_text().splitlines():
        if any(text in line for text in texts):
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise AssertionError(f"none of {texts} in {path}")


def _slow_analysis(tmp_path: Path, runs: int, delay: float) -> Path:
    """``gyre init``'s analysis directory with a slow 3-phase pipeline over ``runs`` run files, as a 1-minute job."""
    from toyphases import make_run_files

    from gyre.cli import main

    analysis = tmp_path / "analysis"
    assert main(["init", str(analysis)]) == 0
    make_run_files(analysis / "runs", list(range(1, runs + 1)), events=500)
    (analysis / "pipeline.py").write_text(
        "import os\nimport gyre\nfrom faultphases import SlowSum\nfrom toyphases import ScalePhase, StatPhase\n"
        f"pipeline = gyre.Pipeline([ScalePhase(), SlowSum(float(os.environ.get('SLOW_SUM_DELAY', {delay}))), "
        f"StatPhase()], [True] * 3, {str(analysis / 'workspace')!r}, {str(analysis / 'runs')!r}, seed=5)\n"
    )
    script = analysis / "slurm_mpi.sbatch"
    text = script.read_text()
    # a 1-minute job: the deadline (its end, less the margin) is what stops it, not a signal
    # asked for two minutes before the end, i.e. before the job began
    for old, new in (
        ("#SBATCH --time=01:00:00", "#SBATCH --time=1"),
        ("#SBATCH --signal=B:TERM@120", "# (no walltime signal)"),
        ("RUNS=1-10", f"RUNS=1-{runs}"),
        ("--deadline-margin 180", "--deadline-margin 10"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    script.write_text(text)
    return analysis


def _statuses(workspace: Path) -> tuple[dict, dict[str, set[tuple[str, int]]]]:
    report = json.loads((workspace / "report.json").read_text())
    out: dict[str, set[tuple[str, int]]] = {}
    for record in report["records"]:
        out.setdefault(record["status"], set()).add((record["phase"], record["run"]))
    return report, out


def test_a_one_minute_job_stops_at_its_deadline_and_resubmits_itself_until_done(slurm, tmp_path, capsys):
    """16 runs of 8 s on 2 workers (over a minute of work) under the init template, as a 1-minute job."""
    from faultphases import gyre_env

    from gyre import Manifest

    analysis = _slow_analysis(tmp_path, runs=16, delay=8.0)
    workspace = analysis / "workspace"
    job = slurm.sbatch(
        analysis / "slurm_mpi.sbatch", "--mem-per-cpu=500M", cwd=analysis, env={"PYTHONPATH": gyre_env()["PYTHONPATH"]}
    )
    fields = slurm.wait(job, timeout=150)
    log = (analysis / f"gyre-{job}.out").read_text()
    assert fields["ExitCode"] == "3:0", f"{fields}\n{log}"
    assert "stopped at the deadline" in log and "resumable" in log, log
    report, first = _statuses(workspace)
    assert report["interrupted"] is True and any("stopped at the deadline" in n for n in report["notes"])
    assert not (workspace / ".gyre" / "lock.json").exists(), "the lock was left behind"
    done = first.get("done", set())
    assert done and done <= {(r.phase, r.run) for r in Manifest(workspace).records() if r.status == "done"}
    started, ended = _epoch(fields["StartTime"]), _epoch(fields["EndTime"])
    stopped = _logged_at(workspace / "log" / "driver.log", "the deadline's margin is reached", "not started")
    resubmitted = re.findall(r"Submitted batch job (\d+)", log)
    assert len(resubmitted) == 1, log

    chain = [job]
    computed = [done]
    while resubmitted:
        chain.append(int(resubmitted[0]))
        fields = slurm.wait(chain[-1], timeout=180)
        log = (analysis / f"gyre-{chain[-1]}.out").read_text()
        assert fields["ExitCode"] in ("0:0", "3:0"), f"{fields}\n{log}"
        report, statuses = _statuses(workspace)
        computed.append(statuses.get("done", set()))
        resubmitted = re.findall(r"Submitted batch job (\d+)", log)
        assert len(chain) <= 4, f"still not done after {len(chain)} jobs"
    assert report["ok"] is True and report["interrupted"] is False, log
    every = [cell for cells in computed for cell in cells]
    assert len(every) == len(set(every)) == 48, f"computed twice or never: {computed}"
    with capsys.disabled():
        print(
            f"\n1-minute job {job}: stopped {stopped - started:.1f} s and ended {ended - started} s after its start "
            "(limit 60 s; Slurm's times are whole seconds), "
            f"{len(done)} of 48 (phase, run)s done; then {len(chain) - 1} resubmitted job(s) did "
            f"{[len(c) for c in computed[1:]]}, nothing twice"
        )
    assert not set(map(str, chain)) & set(slurm.queue())
