"""gyre under a real one-node Slurm: the batch scripts of ``gyre init``, walltime and scancel."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_test_slurm_runs_a_job(slurm, tmp_path):
    script = tmp_path / "hello.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --ntasks=4\nsrun hostname > hosts.txt\necho done\n")
    job = slurm.sbatch(script, "--output=hello-%j.out", cwd=tmp_path)
    fields = slurm.wait(job, timeout=60)
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", fields
    assert (tmp_path / "hosts.txt").read_text().splitlines() == [slurm.node] * 4
    assert (tmp_path / f"hello-{job}.out").read_text() == "done\n"
