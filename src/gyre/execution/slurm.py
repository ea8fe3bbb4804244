"""Elastic workers as Slurm jobs through dask-jobqueue: the driver and scheduler here, each worker a small batch job.

The driver runs where the user starts it (a login node, a small job of its own) together
with the dask scheduler; every dask worker is a batch job of its own that ``sbatch`` submits
(``dask_jobqueue.SLURMCluster``). Workers start as the queue lets them and the pipeline
starts with the first; their number is fixed (``jobs=N``) or adapts to the work waiting
(``minimum_jobs``/``maximum_jobs``, distributed's ``adapt``).

Where jobqueue leaves gaps, the model fills them:

- a worker job that ends on its own (its walltime, its workers' ``lifetime``, an
  ``scancel``, a node failure) is replaced (:mod:`gyre.execution.jobwatch`); the tasks it ran
  are retried on the others by the scheduler, and the report's notes name them
  (:mod:`gyre.execution.losses`);
- when the driver ends, fails or is interrupted, every worker job it submitted is
  cancelled, a further SIGINT/SIGTERM during that shutdown notwithstanding; should the
  driver be killed outright, the workers leave ``death_timeout`` seconds after the
  scheduler went away, and their jobs with them;
- the worker jobs run with the quiet worker settings (``tuned``), and their Slurm output
  goes to the workspace's log directory, not to the directory the driver runs in.

Where the scheduler listens: when every node of the partition is this host (a one-node
test Slurm, a workstation), on the loopback; otherwise on ``interface`` if given (the
nodes' network, e.g. ``ib0``), else on every interface of this host with its address
found by dask — with TLS and credentials made for the job (``security=None``, the
default, needs ``cryptography``), since anyone who reaches an open scheduler can run code
as its owner. ``security=False`` turns TLS off; a ``distributed.security.Security`` is used as given.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError, ConfigError
from .base import Engine, ExecutionModel
from .futures import FuturesEngine
from .slurmqueue import cancel, partition_is_this_host, queue_states
from .tuning import QUIET_WORKER_CONFIG

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["SlurmModel", "dask_environment_lines"]

log = logging.getLogger(__name__)


class SlurmModel(ExecutionModel):
    """Workers as Slurm batch jobs (``dask_jobqueue.SLURMCluster``); the driver and scheduler in this process.

    Parameters
    ----------
    jobs
        Worker jobs to keep running (a fixed size); leave it out for an adaptive size.
    minimum_jobs, maximum_jobs
        The bounds of an adaptive size (distributed's ``adapt``): jobs are asked for as work
        waits and given back when idle. ``minimum_jobs`` must be at least 1.
    cores
        Cores of each job (``--cpus-per-task``); each job runs ``processes`` workers of
        ``cores / processes`` threads.
    memory
        Memory of each job (``--mem``), shared by its workers.
    walltime
        Time limit of each job (``--time``), e.g. ``"01:00:00"``.
    partition, account
        ``--partition`` and ``--account`` of the jobs.
    job_directives
        Further ``#SBATCH`` options, e.g. ``["--qos=short", "--constraint=cpu"]``.
    lifetime, lifetime_stagger
        The workers leave gracefully after ``lifetime`` (± ``lifetime_stagger``), e.g.
        ``"55m"``: shorter than ``walltime``, so that a worker hands its work back before
        Slurm kills its job. Its job is then replaced.
    interface
        Network interface the scheduler and workers use (``"ib0"``); see the module docstring.
    security
        ``None``: TLS with per-job credentials when the scheduler listens beyond the loopback;
        ``False``: never; a ``Security`` object: that one.
    prologue
        Shell lines run in each job before its worker starts (``module load ...``).
    worker_timeout
        Seconds to wait for the first worker (the jobs may wait in the queue) before failing.
    death_timeout
        Seconds a worker waits for a scheduler that went away before it ends, with its job.
    dashboard_address
        Where the dask dashboard is served; ``None`` turns it off.
    worker_saturation
        dask's ``worker-saturation`` (1.0: a lost worker takes only the tasks it ran).
    tuned
        The workers run with ``QUIET_WORKER_CONFIG``; ``False`` keeps dask's settings.
    """

    name = "slurm"
    one_job_per_process = True

    def __init__(
        self,
        jobs: int | None = None,
        *,
        minimum_jobs: int | None = None,
        maximum_jobs: int | None = None,
        cores: int = 1,
        processes: int = 1,
        memory: str = "2GB",
        walltime: str = "01:00:00",
        partition: str | None = None,
        account: str | None = None,
        job_directives: Sequence[str] = (),
        lifetime: str | None = None,
        lifetime_stagger: str | None = None,
        interface: str | None = None,
        security: Any = None,
        prologue: Sequence[str] = (),
        worker_timeout: float = 300.0,
        death_timeout: float = 60.0,
        dashboard_address: str | None = "127.0.0.1:0",
        worker_saturation: float | None = 1.0,
        tuned: bool = True,
        job_name: str = "gyre-worker",
    ) -> None:
        if jobs is not None and (minimum_jobs is not None or maximum_jobs is not None):
            raise ConfigError("give either jobs=N (a fixed size) or minimum_jobs/maximum_jobs (adaptive), not both")
        if jobs is None and minimum_jobs is None and maximum_jobs is None:
            raise ConfigError(
                "say how many worker jobs: jobs=N, or minimum_jobs=M, maximum_jobs=N for an adaptive size"
            )
        if jobs is None:
            minimum_jobs = 1 if minimum_jobs is None else minimum_jobs
            maximum_jobs = minimum_jobs if maximum_jobs is None else maximum_jobs
            if not 1 <= minimum_jobs <= maximum_jobs:
                raise ConfigError(
                    f"adaptive worker jobs need 1 <= minimum <= maximum, got minimum {minimum_jobs}, "
                    f"maximum {maximum_jobs}"
                )
        elif jobs < 1:
            raise ConfigError(f"jobs must be at least 1, got {jobs}")
        if cores < 1 or processes < 1 or cores % processes:
            raise ConfigError(f"cores ({cores}) must be a positive multiple of processes ({processes})")
        if lifetime_stagger is not None and lifetime is None:
            raise ConfigError("lifetime_stagger needs a lifetime")
        self.jobs = jobs
        self.minimum_jobs = minimum_jobs
        self.maximum_jobs = maximum_jobs
        self.cores = cores
        self.processes = processes
        self.memory = memory
        self.walltime = walltime
        self.partition = partition
        self.account = account
        self.job_directives = list(job_directives)
        self.lifetime = lifetime
        self.lifetime_stagger = lifetime_stagger
        self.interface = interface
        self.security = security
        self.prologue = list(prologue)
        self.worker_timeout = worker_timeout
        self.death_timeout = death_timeout
        self.dashboard_address = dashboard_address
        self.worker_saturation = worker_saturation
        self.tuned = tuned
        self.job_name = job_name
        #: what the last open() left for the report: worker jobs that ended, tasks retried
        self._notes: list[str] = []
        self._live: tuple[Any, Any] | None = None  # (worker losses, job watch) while open
        #: the dashboard's port on this host, once open (served on the loopback by default)
        self.dashboard_port: int | None = None

    def describe(self) -> str:
        size = (
            f"{self.jobs} jobs"
            if self.jobs is not None
            else f"{self.minimum_jobs} to {self.maximum_jobs} jobs, adaptive"
        )
        threads = self.cores // self.processes
        return (
            f"slurm (dask-jobqueue: {size}, each {self.processes} worker{'s' if self.processes > 1 else ''} "
            f"× {threads} thread{'s' if threads > 1 else ''}, {self.memory}, {self.walltime})"
        )

    def dashboard_tunnel_hint(self) -> str | None:
        """The SSH tunnel to the dashboard on this host's loopback (the driver's: a login node, say)."""
        bound = (self.dashboard_address or "").rsplit(":", 1)[0]
        if self.dashboard_port is None or bound not in ("127.0.0.1", "localhost"):
            return None
        return (
            f"ssh -N -L 8787:127.0.0.1:{self.dashboard_port} {socket.gethostname()}, "
            "then open http://localhost:8787/status (and http://localhost:8787/gyre)"
        )

    def notes(self) -> list[str]:
        """Worker jobs that ended while the pipeline ran, and the tasks that were retried elsewhere."""
        return _loss_notes(*self._live) if self._live is not None else list(self._notes)

    @contextmanager
    def open(self) -> Iterator[Engine]:
        cluster = self._start_cluster()
        from .jobwatch import JobWatch
        from .losses import WorkerLosses

        losses = WorkerLosses()
        watch = JobWatch(cluster, target=self.jobs, joined=lambda: losses.joined)
        client: Client | None = None
        self._notes, self._live = [], (losses, watch)
        try:
            cluster.scheduler.add_plugin(losses)  # the scheduler runs in this process
            if self.jobs is not None:
                cluster.scale(jobs=self.jobs)
            else:
                cluster.adapt(minimum_jobs=self.minimum_jobs, maximum_jobs=self.maximum_jobs)
            watch.start()
            from distributed import Client

            client = Client(cluster)
            self._wait_for_a_worker(client, cluster)
            max_jobs = self.jobs if self.jobs is not None else self.maximum_jobs
            engine = _SlurmEngine(client, planned_threads=(max_jobs or 1) * self.cores)
            port = client.scheduler_info().get("services", {}).get("dashboard")
            self.dashboard_port = None if port is None else int(port)
            log.info("%s; scheduler at %s", self.describe(), cluster.scheduler_address)
            yield engine
        finally:
            self._notes, self._live = _loss_notes(losses, watch), None
            with _signals_held():
                _close(cluster, watch, client)

    def _start_cluster(self) -> Any:
        # importing dask_jobqueue makes SIGINT end the process (sys.exit, status 0) for its own
        # runners: the driver's handler (a clean stop with the report) is put back
        interrupt = signal.getsignal(signal.SIGINT)
        try:
            from dask_jobqueue.slurm import SLURMCluster
        except ImportError as exc:
            raise ConfigError("the slurm execution model needs dask-jobqueue: pip install 'gyre[slurm]'") from exc
        finally:
            if threading.current_thread() is threading.main_thread() and interrupt is not None:
                signal.signal(signal.SIGINT, interrupt)
        if shutil.which("sbatch") is None:
            raise ClusterError("the slurm execution model submits worker jobs with sbatch, which is not on PATH")
        local = self.interface is None and partition_is_this_host(self.partition)
        dashboard = self._dashboard()
        scheduler_options: dict[str, Any] = (
            {"dashboard_address": dashboard} if dashboard else {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
        )
        if local:
            scheduler_options["host"] = "127.0.0.1"
        logs = Path(self.log_directory) if self.log_directory is not None else None
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        options = self._job_options(local, logs)
        security = self._security(local)
        if security:
            options["security"] = security
            # the workers' credentials, as files only the user may read, where the jobs can see them
            options["shared_temp_directory"] = str(logs) if logs is not None else str(Path.home())
        try:
            cluster = SLURMCluster(
                scheduler_options=scheduler_options,
                silence_logs=False,  # distributed's records are routed by the driver's log settings
                **options,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ClusterError(f"could not start the scheduler for the Slurm worker jobs: {exc}") from exc
        if self.worker_saturation is not None and cluster.scheduler is not None:  # read per decision
            cluster.scheduler.WORKER_SATURATION = self.worker_saturation
        if logs is None:
            log.info("no log directory: the worker jobs' output goes where Slurm puts it by default")
        return cluster

    def _job_options(self, local: bool, logs: Path | None) -> dict[str, Any]:
        """What each worker job is: its size and directives, its script's prologue and the worker's arguments.

        The lists add to those of dask's ``jobqueue.slurm`` configuration (a site's
        ``jobqueue.yaml``: ``module load`` lines, ``#SBATCH`` options), which would otherwise be replaced.
        """
        import dask

        def configured(key: str) -> list[str]:
            return list(dask.config.get(f"jobqueue.slurm.{key}", default=None) or [])

        worker_args = configured("worker-extra-args")
        if self.lifetime is not None:
            worker_args += ["--lifetime", self.lifetime]
            if self.lifetime_stagger is not None:
                worker_args += ["--lifetime-stagger", self.lifetime_stagger]
        if local:
            worker_args += ["--host", "127.0.0.1"]
        return {
            "cores": self.cores,
            "processes": self.processes,
            "memory": self.memory,
            "walltime": self.walltime,
            "queue": self.partition,
            "account": self.account,
            "job_extra_directives": [*configured("job-extra-directives"), *self.job_directives],
            "job_script_prologue": [
                *dask_environment_lines(QUIET_WORKER_CONFIG if self.tuned else {}),
                *configured("job-script-prologue"),
                *self.prologue,
            ],
            "worker_extra_args": worker_args,
            "interface": self.interface,
            "death_timeout": self.death_timeout,
            "log_directory": str(logs) if logs is not None else None,
            "job_name": self.job_name,
        }

    def _dashboard(self) -> str | None:
        if self.dashboard_address is None or importlib.util.find_spec("bokeh") is None:
            return None
        return self.dashboard_address

    def _security(self, local: bool) -> Any:
        if self.security is False or (self.security is None and local):
            return None
        if self.security is not None:
            return self.security
        from distributed.security import Security

        try:
            return Security.temporary()
        except ImportError as exc:
            raise ConfigError(
                "the Slurm worker jobs reach the scheduler over the network, where gyre uses TLS with "
                "credentials made for the job, which needs the cryptography package: pip install 'gyre[slurm]' "
                "(or SlurmModel(security=False) to go without, on a network only you can reach)"
            ) from exc

    def _wait_for_a_worker(self, client: Client, cluster: Any) -> None:
        """The pipeline starts with the first worker; the others join as the queue starts their jobs."""
        try:
            client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError as exc:
            ids = [str(job.job_id) for job in cluster.workers.values() if getattr(job, "job_id", None)]
            raise ClusterError(
                f"no Slurm worker job started within {self.worker_timeout:g} s; the jobs "
                f"{', '.join(ids) or '(none submitted)'} are: {queue_states(ids)}. Check the partition and "
                "limits (--slurm-partition, --slurm-walltime, --slurm-memory), the jobs' output in the log "
                "directory, or raise worker_timeout when the queue is busy"
            ) from exc


class _SlurmEngine(FuturesEngine):
    """A futures engine whose size is what the cluster is meant to reach, not the workers that joined so far."""

    def __init__(self, client: Client, *, planned_threads: int) -> None:
        super().__init__(client)
        self.planned_threads = planned_threads

    @property
    def n_threads(self) -> int:
        return max(super().n_threads, self.planned_threads)


def dask_environment_lines(config: dict[str, Any]) -> list[str]:
    """dask settings as the ``export DASK_...=value`` lines of a job script (read by the processes it starts)."""
    return [f"export DASK_{key.upper().replace('.', '__').replace('-', '_')}={value}" for key, value in config.items()]


def _loss_notes(losses: Any, watch: Any) -> list[str]:
    """One note per worker that left with tasks in hand, and one for the jobs replaced."""
    from .losses import task_label

    notes = []
    for loss in losses.losses:
        job = next((i for name, i in watch.job_ids.items() if loss.name in (name, *_group(name, loss.name))), None)
        tasks = ", ".join(task_label(key) for key in loss.keys)
        notes.append(
            f"worker {loss.name} (Slurm job {job or '?'}) left with {tasks} assigned to it: "
            "run again on the other workers (see their records)"
        )
    if watch.ended:
        ended = ", ".join(f"{e.job_id or '?'} ({e.name})" for e in watch.ended)
        what = "replaced" if watch.target is not None else "left to the adaptive size to replace as the work needs"
        notes.append(f"worker jobs that ended while the pipeline ran, {what}: {ended}")
    return notes


def _group(job: str, worker: str) -> tuple[str, ...]:
    """``(worker,)`` when ``worker`` is one of the several worker processes of ``job`` (``<job>-<n>``)."""
    return (worker,) if worker.startswith(f"{job}-") and worker[len(job) + 1 :].isdigit() else ()


def _close(cluster: Any, watch: Any, client: Client | None) -> None:
    """Stop watching, close the client and the cluster, then cancel any worker job still known."""
    ids = set(watch.job_ids.values()) | {str(j.job_id) for j in cluster.workers.values() if getattr(j, "job_id", None)}
    try:
        watch.stop()
    except (RuntimeError, OSError) as exc:
        log.debug("the job watch did not stop cleanly: %s", exc)
    if client is not None:
        client.close()
    try:
        cluster.close()
    except (RuntimeError, OSError, TimeoutError) as exc:
        log.warning("the Slurm worker cluster did not close cleanly (%s): cancelling its jobs", exc)
    ids |= {str(j.job_id) for j in cluster.workers.values() if getattr(j, "job_id", None)}
    for name, value in list(vars(cluster).items()):  # the workers' TLS credentials, written for the jobs
        if name.startswith("_job_") and hasattr(value, "close"):
            value.close()  # a named temporary file: closing deletes it
    cancel(ids)


@contextmanager
def _signals_held() -> Iterator[None]:
    """While the worker jobs are cancelled, a further SIGINT/SIGTERM is noted, not obeyed (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: Any) -> None:
        log.warning("%s while cancelling the Slurm worker jobs: finishing that first", signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
