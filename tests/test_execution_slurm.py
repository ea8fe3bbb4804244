"""SlurmModel without a Slurm: its options, the command line that builds it, its job watch and loss notes.

What it does with real worker jobs is in ``test_slurm_jobqueue.py``.
"""

from __future__ import annotations

import asyncio

import dask
import pytest

from gyre import ConfigError, SlurmModel
from gyre.cli import _parser
from gyre.cli.run import _model
from gyre.execution import resolve_model
from gyre.execution.jobwatch import JobWatch
from gyre.execution.losses import WorkerLosses, task_label
from gyre.execution.slurm import dask_environment_lines
from gyre.execution.tuning import QUIET_WORKER_CONFIG


def _cli_model(*options: str) -> SlurmModel:
    model = _model(_parser().parse_args(["run", "p.py:pipeline", "--runs", "1-4", *options]))
    assert isinstance(model, SlurmModel)
    return model


def test_the_command_line_passes_the_job_options_through():
    model = _cli_model(
        "--slurm-jobs=3",
        "--slurm-partition=short",
        "--slurm-account=nuc",
        "--slurm-walltime=00:30:00",
        "--slurm-memory=4GB",
        "--slurm-cores=2",
        "--slurm-opt=--qos=debug",
        "--slurm-opt=--constraint=cpu",
        "--slurm-lifetime=25m",
        "--slurm-lifetime-stagger=2m",
    )
    assert (model.jobs, model.minimum_jobs, model.maximum_jobs) == (3, None, None)
    assert (model.partition, model.account, model.walltime, model.memory) == ("short", "nuc", "00:30:00", "4GB")
    assert (model.cores, model.processes) == (2, 2)  # one single-threaded worker per core
    assert model.job_directives == ["--qos=debug", "--constraint=cpu"]
    assert (model.lifetime, model.lifetime_stagger) == ("25m", "2m")
    assert model.describe() == "slurm (dask-jobqueue: 3 jobs, each 2 workers × 1 thread, 4GB, 00:30:00)"


@pytest.mark.parametrize("options", [["--slurm-jobs=2:8"], ["--slurm-min=2", "--slurm-max=8"]])
def test_an_adaptive_size_from_the_command_line(options):
    model = _cli_model(*options)
    assert (model.jobs, model.minimum_jobs, model.maximum_jobs) == (None, 2, 8)
    assert "2 to 8 jobs, adaptive" in model.describe()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--slurm-jobs=2", "--slurm-min=1"], "not two of them"),
        (["--slurm-max=2", "--procs=2"], "leave out --procs"),
        (["--slurm-jobs=3:1"], "1 <= minimum <= maximum"),
        (["--slurm-jobs=0"], "at least 1"),
    ],
)
def test_contradicting_slurm_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        _cli_model(*options)


def test_a_job_count_that_is_not_one_says_what_it_expects(capsys):
    with pytest.raises(SystemExit):
        _cli_model("--slurm-jobs=many")
    assert "expected N or MIN:MAX worker jobs, e.g. 4 or 2:8, got 'many'" in capsys.readouterr().err


def test_the_model_needs_a_size_and_consistent_cores():
    with pytest.raises(ConfigError, match="say how many worker jobs"):
        SlurmModel()
    with pytest.raises(ConfigError, match="not both"):
        SlurmModel(2, maximum_jobs=4)
    with pytest.raises(ConfigError, match="multiple of processes"):
        SlurmModel(2, cores=3, processes=2)
    with pytest.raises(ConfigError, match="lifetime_stagger needs a lifetime"):
        SlurmModel(2, lifetime_stagger="1m")
    assert SlurmModel(maximum_jobs=4).minimum_jobs == 1


def test_cluster_slurm_is_n_procs_worker_jobs():
    model = resolve_model("slurm", n_procs=3)
    assert isinstance(model, SlurmModel) and model.jobs == 3


def test_the_job_script_lines_set_the_quiet_worker_settings():
    lines = dask_environment_lines(QUIET_WORKER_CONFIG)
    env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    # what a worker process makes of them: dask's own reading of DASK_* variables
    collected = dask.config.collect_env(env)
    for key, value in QUIET_WORKER_CONFIG.items():
        assert dask.config.get(key, config=collected) == value, key


def test_task_keys_read_as_phase_and_run():
    assert task_label("sum-1a2b3c-17") == "sum on run 17"
    assert task_label("scale+sum-1a2b3c-4") == "scale, sum on run 4"
    assert task_label("not-a-task") == "not-a-task"


def test_worker_losses_keep_the_tasks_a_departed_worker_had():
    from types import SimpleNamespace

    scheduler = SimpleNamespace(workers={"tcp://w:1": SimpleNamespace(name="SLURMCluster-0")})
    losses = WorkerLosses()
    losses.add_worker(scheduler, "tcp://w:1")
    losses.log_event("all", {"action": "remove-worker", "worker": "tcp://w:1", "processing-tasks": set()})
    losses.log_event(
        "all", {"action": "remove-worker", "worker": "tcp://w:1", "processing-tasks": {"sum-ab-3"}, "stimulus_id": "x"}
    )
    losses.log_event("tcp://w:1", {"action": "remove-worker", "processing-tasks": {"sum-ab-3"}})  # same, per worker
    assert [(loss.name, loss.keys) for loss in losses.losses] == [("SLURMCluster-0", ("sum-ab-3",))]
    assert losses.joined == {"SLURMCluster-0"}


class _Job:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id


class _Cluster:
    """What JobWatch uses of a jobqueue cluster: its spec, its jobs, the workers the scheduler has."""

    def __init__(self, names: list[str]) -> None:
        from distributed.core import Status

        self.status = Status.running
        self.new_spec = {"cls": "job"}
        self.worker_spec = {name: dict(self.new_spec) for name in names}
        self.workers = {name: _Job(str(100 + i)) for i, name in enumerate(names)}
        self.observed = set(names)
        self._i = len(names) - 1
        self.corrected = 0

    def _new_worker_name(self, number: int) -> str:
        return f"job-{number}"

    async def _correct_state(self) -> None:
        self.corrected += 1
        for name in set(self.worker_spec) - set(self.workers):
            self.workers[name] = _Job(str(200 + self._i))


@pytest.mark.parametrize("target", [2, None])
def test_a_job_whose_workers_left_is_replaced_at_a_fixed_size_only(target):
    cluster = _Cluster(["job-0", "job-1"])
    watch = JobWatch(cluster, target=target, joined=lambda: {"job-0", "job-1"})
    asyncio.run(watch.check())
    assert not watch.ended and cluster.corrected == 0
    cluster.observed = {"job-1"}  # job-0 reached its walltime
    asyncio.run(watch.check())
    assert [(e.name, e.job_id) for e in watch.ended] == [("job-0", "100")]
    if target is None:  # adaptive: the next round asks for what the work needs
        assert set(cluster.worker_spec) == {"job-1"}
    else:  # a new job, under a name no job had
        assert set(cluster.worker_spec) == {"job-1", "job-2"} and "job-2" in cluster.workers
    assert cluster.corrected == 1
    asyncio.run(watch.check())  # the new job has not joined yet: nothing more happens
    assert len(watch.ended) == 1 and cluster.corrected == 1


def test_a_site_jobqueue_configuration_is_added_to_not_replaced():
    site = {
        "jobqueue.slurm.job-script-prologue": ["module load hdf5"],
        "jobqueue.slurm.job-extra-directives": ["--qos=site"],
        "jobqueue.slurm.worker-extra-args": ["--no-dashboard"],
    }
    model = SlurmModel(2, job_directives=["--constraint=cpu"], prologue=["echo mine"], lifetime="50m")
    with dask.config.set(site):
        options = model._job_options(local=True, logs=None)
    assert options["job_script_prologue"] == [
        *dask_environment_lines(QUIET_WORKER_CONFIG),
        "module load hdf5",
        "echo mine",
    ]
    assert options["job_extra_directives"] == ["--qos=site", "--constraint=cpu"]
    assert options["worker_extra_args"] == ["--no-dashboard", "--lifetime", "50m", "--host", "127.0.0.1"]


def test_the_notes_name_the_slurm_job_and_the_runs_of_a_departed_worker():
    from types import SimpleNamespace

    from gyre.execution.jobwatch import EndedJob
    from gyre.execution.losses import WorkerLoss
    from gyre.execution.slurm import _loss_notes

    losses = SimpleNamespace(
        losses=[
            WorkerLoss("SLURMCluster-10", "tcp://a:1", ("sum-ab-3", "scale+sum-ab-7"), "x"),
            WorkerLoss("SLURMCluster-1-1", "tcp://b:1", ("stat-ab-2",), "x"),
        ]
    )
    ended = [EndedJob("SLURMCluster-10", "4127")]
    watch = SimpleNamespace(job_ids={"SLURMCluster-1": "4118", "SLURMCluster-10": "4127"}, ended=ended, target=2)
    assert _loss_notes(losses, watch) == [
        "worker SLURMCluster-10 (Slurm job 4127) left with sum on run 3, scale, sum on run 7 assigned to it: "
        "run again on the other workers (see their records)",
        "worker SLURMCluster-1-1 (Slurm job 4118) left with stat on run 2 assigned to it: "
        "run again on the other workers (see their records)",
        "worker jobs that ended while the pipeline ran, replaced: 4127 (SLURMCluster-10)",
    ]


def test_the_dashboard_tunnel_names_this_host():
    import socket

    model = SlurmModel(2)
    assert model.dashboard_tunnel_hint() is None  # not open
    model.dashboard_port = 40213
    assert model.dashboard_tunnel_hint().startswith(f"ssh -N -L 8787:127.0.0.1:40213 {socket.gethostname()}, then")
    served = SlurmModel(2, dashboard_address=":8787")  # on the host's network: no tunnel needed
    served.dashboard_port = 8787
    assert served.dashboard_tunnel_hint() is None
