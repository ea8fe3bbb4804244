"""Running under ``mpiexec`` through dask-mpi: rank 0 the scheduler, rank 1 the driver, the rest workers.

Every rank runs the same script. When it reaches ``MPIModel.open()`` (inside
``start_pipeline``), the ranks split up:

- rank 0 starts the dask scheduler (and its dashboard),
- ranks 2 and up start one dask worker each,
- rank 1 returns into the script as the driver, connects a client, waits until every
  worker has joined and yields the engine that ``start_pipeline`` submits tasks to.

When the driver leaves the ``with`` block, normally or through an exception, it shuts the
scheduler and the workers down, and the scheduler and worker ranks leave the process with
status 0: ``open()`` never yields on them, so code after ``start_pipeline`` runs on the driver
only. All ranks then meet at a last non-blocking barrier; if the others do not arrive within
``shutdown_timeout`` seconds the driver calls ``MPI_Abort``, so a broken job ends with a
non-zero status instead of hanging until its walltime. An MPI world is used once: a process
can open an ``MPIModel`` a single time.

A SIGINT or SIGTERM to the job (the walltime signal, ``scancel``, Ctrl-C) reaches every rank:
``mpiexec`` and ``srun`` pass it on. Only the driver acts on it (see :mod:`gyre.job.interrupt`);
the scheduler and worker ranks keep serving while the driver cancels, records and writes
its report, and leave when it shuts the cluster down, or by themselves ``signal_grace``
seconds after the signal should the driver never do so.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ClusterError, PipelineInterrupted
from .base import Engine, ExecutionModel
from .futures import FuturesEngine
from .launcher import launched_rank
from .logs import route_dask_logs
from .security import JobCredentials, make_credentials
from .tuning import QUIET_WORKER_CONFIG

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["MPIModel", "install_abort_on_error", "launched_by_mpiexec"]

log = logging.getLogger(__name__)

SCHEDULER_RANK = 0
DRIVER_RANK = 1
MIN_WORLD_SIZE = 3

# MPI is initialised once per process and the other ranks leave after the first cluster:
# remember the processes (by pid) that have used their world, so a second open() fails clearly.
_USED_BY_PIDS: set[int] = set()
# ... and those whose ranks all met after the shutdown: an error raised later needs no abort.
_RELEASED_PIDS: set[int] = set()


class MPIModel(ExecutionModel):
    """A dask cluster made of the ranks of an ``mpiexec`` job (``mpiexec -n N``, N ≥ 3).

    Parameters
    ----------
    threads_per_worker
        Threads of each worker (one task per thread).
    memory_limit
        Memory of each worker before it spills and is restarted: bytes, a fraction of the
        machine, a string like ``"4GB"`` or ``"auto"``.
    interface
        Network interface for the scheduler and workers, e.g. ``"ib0"``; ``None`` uses the
        loopback when every rank is on one host, and lets dask choose otherwise.
    local_directory
        Where workers keep spilled data; a node-local scratch directory is best.
    dashboard_address
        Where rank 0 serves the dask dashboard; ``127.0.0.1:0`` (the default) is a free port on
        the loopback of rank 0's node, reached with an SSH tunnel. ``None`` turns it off.
    worker_class
        Dotted name of the worker class (``"distributed.Nanny"`` restarts dying workers).
    worker_options
        Further keyword arguments for every worker; each worker's own small HTTP server
        (``dashboard_address``) binds to 127.0.0.1 unless these say otherwise.
    worker_timeout
        Seconds the driver waits for all N-2 workers before failing with ``ClusterError``.
    shutdown_timeout
        Seconds the driver waits for the other ranks to end before aborting the MPI job.
    signal_grace
        Seconds the scheduler and worker ranks keep serving after a SIGINT/SIGTERM, so that
        the driver can finish its cleanup; should the driver not shut them down by then,
        they leave with status 128 + the signal.
    security
        TLS between the ranks, with credentials made for the job by rank 0 and sent to the
        others over MPI (never written to disk): ``None`` (the default) when the ranks span
        more than one host, ``True`` always, ``False`` never (``--insecure``). On one host the
        cluster listens on the loopback and needs none.
    tuned
        Worker ranks run with ``QUIET_WORKER_CONFIG`` (no statistical profiler, slower
        monitors), which keeps compute-bound phases at plain-process speed; binding ranks to
        cores is the launcher's part (``mpiexec -bind-to core``). ``False`` keeps dask's settings.
    """

    name = "mpi"
    #: ``open()`` returns on one process only (the driver): callers should open it before
    #: any side effect (workspace, assets), which would otherwise happen on every rank
    splits_processes = True

    def __init__(
        self,
        *,
        threads_per_worker: int = 1,
        memory_limit: str | float | None = "auto",
        interface: str | None = None,
        local_directory: str | Path | None = None,
        dashboard_address: str | None = "127.0.0.1:0",
        worker_class: str = "distributed.Worker",
        worker_options: Mapping[str, Any] | None = None,
        worker_timeout: float = 120.0,
        shutdown_timeout: float = 60.0,
        signal_grace: float = 30.0,
        security: bool | None = None,
        tuned: bool = True,
    ) -> None:
        if threads_per_worker < 1:
            raise ClusterError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
        if worker_timeout <= 0 or shutdown_timeout <= 0 or signal_grace <= 0:
            raise ClusterError("worker_timeout, shutdown_timeout and signal_grace must be positive numbers of seconds")
        self.threads_per_worker = threads_per_worker
        self.memory_limit = memory_limit
        self.interface = interface
        self.local_directory = local_directory
        self.dashboard_address = dashboard_address
        self.worker_class = worker_class
        self.worker_options = {"dashboard_address": "127.0.0.1:0", **(worker_options or {})}
        self.worker_timeout = worker_timeout
        self.shutdown_timeout = shutdown_timeout
        self.signal_grace = signal_grace
        self.tuned = tuned
        self.security = security
        #: whether the ranks speak TLS, known once the model is open
        self.tls = False
        #: the host name of every rank, known once the model is open
        self.hosts: list[str] = []
        #: the dashboard port on rank 0's host, if it is served
        self.dashboard_port: int | None = None

    @property
    def world_size(self) -> int | None:
        """How many MPI ranks the job has; ``None`` until the model is open."""
        return len(self.hosts) or None

    @property
    def n_workers(self) -> int | None:
        """How many dask workers the job has (world size - 2); ``None`` until the model is open."""
        return None if not self.hosts else len(self.hosts) - 2

    def describe(self) -> str:
        """One line: the world size, the workers and where rank 0 (scheduler, dashboard) runs."""
        if not self.hosts:
            return "mpi (dask-mpi under mpiexec: rank 0 scheduler, rank 1 driver, ranks ≥ 2 workers)"
        n_hosts = len(set(self.hosts))
        text = (
            f"mpi ({len(self.hosts)} ranks on {n_hosts} host{'s' if n_hosts > 1 else ''}: "
            f"scheduler on rank 0 at {self.hosts[SCHEDULER_RANK]}, driver on rank 1, "
            f"{len(self.hosts) - 2} workers x {self.threads_per_worker} thread" + (", TLS" if self.tls else "")
        )
        if self.dashboard_port is not None:
            text += f"; dashboard on {self.hosts[SCHEDULER_RANK]} at 127.0.0.1:{self.dashboard_port}"
        return text + ")"

    @contextmanager
    def open(self) -> Iterator[Engine]:
        """Split the MPI world into scheduler, driver and workers; yields only on the driver.

        This is where a rank becomes gyre's: from here an exception that ends a rank aborts
        the whole MPI job (:func:`install_abort_on_error`) instead of leaving the others waiting.
        """
        if launched_by_mpiexec():
            install_abort_on_error()
        with leave_on_signals_while_blocked():  # MPI_Init waits for every rank, in C
            from mpi4py import MPI

        comm = MPI.COMM_WORLD
        size, rank = comm.Get_size(), comm.Get_rank()
        if size < MIN_WORLD_SIZE:
            # every rank finds this by itself and exits with this error: no rank waits for
            # another, so no abort is needed (an abort could cut the other ranks' messages short)
            _RELEASED_PIDS.add(os.getpid())
            raise ClusterError(
                f"mpi execution found {size} MPI rank{'s' if size != 1 else ''}, needs at least "
                f"{MIN_WORLD_SIZE}: one for the scheduler, one for the driver and one or more for workers. "
                f"Start it with e.g. `mpiexec -n {MIN_WORLD_SIZE + 1} python pipeline.py` (2 workers)"
                + (" — was the script started with mpiexec at all?" if size == 1 else "")
            )
        if os.getpid() in _USED_BY_PIDS:
            raise ClusterError(
                "this MPI job already ran a pipeline and its scheduler and workers are gone: "
                "open an MPIModel once per mpiexec job"
            )
        _USED_BY_PIDS.add(os.getpid())
        role = "driver" if rank == DRIVER_RANK else "scheduler" if rank == SCHEDULER_RANK else "worker"
        if rank != DRIVER_RANK:
            # from here to the end, a signal leaves the rank serving until the driver shuts the
            # cluster down (or signal_grace passes): while the ranks meet, start and serve
            with serve_through_signals(f"rank {rank} ({role})", self.signal_grace):
                self.hosts = list(comm.allgather(socket.gethostname()))
                self.scheduler_host = self.hosts[SCHEDULER_RANK]
                self._route_logs(rank, role)
                credentials = self._credentials(comm)
                self.tls = credentials is not None
                with nullcontext() if credentials is None else credentials.configured():
                    self._serve(comm)
                comm.Ibarrier().Wait()
            sys.exit(0)
        # the driver holds a signal until the cluster is up far enough to be shut down again
        held: list[int] = []
        release = _hold_signals(held, self.signal_grace)
        try:
            self.hosts = list(comm.allgather(socket.gethostname()))
            self.scheduler_host = self.hosts[SCHEDULER_RANK]
            undo_logs = self._route_logs(rank, role)
            credentials = self._credentials(comm)
            self.tls = credentials is not None
            with nullcontext() if credentials is None else credentials.configured():
                try:
                    with self._drive(comm, held, release) as engine:
                        yield engine
                finally:
                    undo_logs()
        finally:
            release()

    def _credentials(self, comm: Any) -> JobCredentials | None:
        """The job's TLS credentials on every rank (rank 0 makes them), or ``None`` without TLS."""
        if not (self.security or (self.security is None and len(set(self.hosts)) > 1)):
            return None
        made: JobCredentials | str
        if comm.Get_rank() == SCHEDULER_RANK:
            try:
                made = make_credentials()
            except ClusterError as exc:  # every rank raises it, none waits for rank 0
                made = str(exc)
        else:
            made = ""
        made = comm.bcast(made, root=SCHEDULER_RANK)
        if isinstance(made, str):
            _RELEASED_PIDS.add(os.getpid())
            raise ClusterError(made)
        return made

    def driver_logs(self) -> AbstractContextManager[Any]:
        """Nothing here: every rank routes its own records when the model opens (``dask-rank<N>-<role>.log``)."""
        return nullcontext()

    def _route_logs(self, rank: int, role: str) -> Callable[[], None]:
        """distributed's records of this rank to ``log_directory/dask-rank<N>-<role>.log``; warnings also to stderr."""
        if self.log_directory is None:
            return lambda: None
        path = Path(self.log_directory) / f"dask-rank{rank}-{role}.log"
        return route_dask_logs(path, tag=f"rank {rank} ({role})")

    def _initialize(self, comm: Any) -> bool:
        from dask_mpi import initialize

        dashboard = self.dashboard_address is not None
        if dashboard and importlib.util.find_spec("bokeh") is None:
            if comm.Get_rank() == SCHEDULER_RANK:
                log.info("bokeh is not installed: the dask dashboard is off (pip install 'gyre[dashboard]')")
            dashboard = False
        return bool(
            initialize(
                interface=self._interface(),
                nthreads=self.threads_per_worker,
                local_directory=None if self.local_directory is None else str(self.local_directory),
                memory_limit=self.memory_limit,
                dashboard=dashboard,
                dashboard_address=self.dashboard_address or ":0",
                protocol="tls" if self.tls else None,
                worker_class=self.worker_class,
                worker_options=self.worker_options,
                comm=comm,
                exit=False,
            )
        )

    def _interface(self) -> str | None:
        """The interface asked for; on a job within one host, the loopback (nothing leaves the node)."""
        if self.interface is not None or len(set(self.hosts)) != 1:
            return self.interface
        return loopback_interface()

    def _serve(self, comm: Any) -> None:
        """Be the scheduler (rank 0) or a worker (ranks ≥ 2) until the driver shuts the cluster down.

        A role that fails aborts the whole job: the other ranks may be waiting for this one in
        an MPI call (the scheduler's address) that would otherwise never return.
        """
        import dask

        role = "scheduler" if comm.Get_rank() == SCHEDULER_RANK else "worker"
        try:
            with dask.config.set(QUIET_WORKER_CONFIG if self.tuned and role == "worker" else {}):
                self._initialize(comm)
        except BaseException:
            log.exception("rank %d: the dask %s failed, aborting the MPI job", comm.Get_rank(), role)
            _abort(comm)
        log.debug("rank %d: the dask %s has shut down", comm.Get_rank(), role)

    @contextmanager
    def _drive(self, comm: Any, held: list[int], release: Callable[[], None]) -> Iterator[Engine]:
        import dask
        from distributed import Client

        previous = dask.config.get("scheduler_address", default=None)
        self._initialize(comm)
        address = dask.config.get("scheduler_address")
        client: Client | None = None
        release()
        try:  # from here a signal (PipelineInterrupted) or an error still shuts the cluster down
            if held:
                log.warning("received %s while the cluster started: stopping", signal.Signals(held[0]).name)
                raise PipelineInterrupted(held[0])
            client = Client(address, timeout=self.worker_timeout)
            self._wait_for_workers(client)
            engine = FuturesEngine(client)
            self._announce_dashboard(client, engine)
            yield engine
        finally:
            _shut_down(client, address)
            _restore_scheduler_address(previous)
            if not _wait_for_ranks(comm, self.shutdown_timeout):
                failure = sys.exc_info()[1]
                if failure is not None:
                    log.error("the driver failed: %s", failure, exc_info=failure)
                log.error(
                    "the scheduler and worker ranks did not end within %g s of the shutdown: aborting "
                    "the MPI job so that it does not hang",
                    self.shutdown_timeout,
                )
                _abort(comm)
            _RELEASED_PIDS.add(os.getpid())

    def _wait_for_workers(self, client: Client) -> None:
        expected = len(self.hosts) - 2
        try:
            client.wait_for_workers(expected, timeout=self.worker_timeout)
        except TimeoutError as exc:
            found = len(client.nthreads())
            raise ClusterError(
                f"only {found} of {expected} dask workers joined the scheduler within "
                f"{self.worker_timeout:g} s (ranks 2..{len(self.hosts) - 1} each start one): check the "
                "worker ranks' errors in the job log, or raise worker_timeout for slow starts"
            ) from exc
        log.info("%s", self.describe())

    def _announce_dashboard(self, client: Client, engine: Engine) -> None:
        services = client.scheduler_info().get("services", {})
        port = services.get("dashboard")
        if port is None:
            return
        self.dashboard_port = int(port)
        host = self.hosts[SCHEDULER_RANK]
        hint = self.dashboard_tunnel_hint()
        if hint is not None:
            engine.dashboard_link = f"http://127.0.0.1:{port}/status"
            log.info(
                "dask dashboard on %s (rank 0) at http://127.0.0.1:%s/status; from your own machine: %s",
                host,
                port,
                hint,
            )
        else:
            engine.dashboard_link = f"http://{host}:{port}/status"

    def dashboard_tunnel_hint(self) -> str | None:
        """How to reach a dashboard bound to rank 0's loopback from one's own machine; ``None`` if not needed."""
        bound = (self.dashboard_address or "").rsplit(":", 1)[0]
        if self.dashboard_port is None or not self.hosts or bound not in ("127.0.0.1", "localhost"):
            return None
        return (
            f"ssh -L 8787:127.0.0.1:{self.dashboard_port} -J <login-node> {self.hosts[SCHEDULER_RANK]}, "
            "then open http://localhost:8787/status (and http://localhost:8787/gyre)"
        )


def loopback_interface() -> str | None:
    """The name of the loopback interface (``"lo"``), ``None`` where there is none by that name."""
    names = {name for _, name in socket.if_nameindex()} if hasattr(socket, "if_nameindex") else set()
    return "lo" if "lo" in names else None


@contextmanager
def leave_on_signals_while_blocked() -> Iterator[None]:
    """For the block, a SIGINT/SIGTERM ends the process at once with 128 + the signal.

    ``MPI_Init`` waits inside C for every rank to arrive, where Python's handlers cannot
    run: a rank that a signal finds there would otherwise wait forever for a rank the same
    signal ended. The signals are blocked in this thread and taken by a helper thread
    (``sigwait``), which leaves the process; nothing of a job exists yet to clean up. After
    the block, a signal that came meanwhile but after the helper left is delivered as usual.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    wake = signal.SIGUSR2
    watched = {signal.SIGINT, signal.SIGTERM, wake}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, watched)

    def wait() -> None:
        signum = signal.sigwait(watched)
        if signum != wake:
            name = signal.Signals(signum).name
            sys.stderr.write(f"gyre: interrupted by {name} while starting MPI; nothing was run\n")
            sys.stderr.flush()
            os._exit(128 + signum)

    helper = threading.Thread(target=wait, name="gyre-signals-during-mpi-init", daemon=True)
    helper.start()
    try:
        yield
    finally:
        if helper.ident is not None:
            signal.pthread_kill(helper.ident, wake)
        helper.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _hold_signals(held: list[int], grace: float) -> Callable[[], None]:
    """Record SIGINT/SIGTERM in ``held`` instead of acting on them; returns what puts the handlers back.

    The driver holds them while it meets the other ranks and the cluster starts (MPI calls
    that cannot be left halfway), and acts on them once the cluster can be shut down again.
    Should that not happen within ``grace`` seconds of the signal (a rank the same signal
    ended before it reached MPI leaves the others waiting in a collective call), the process
    leaves with 128 + the signal. Main thread only; the returned function may be called more than once.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    deadline: list[threading.Timer] = []

    def leave(signum: int) -> None:
        log.error(
            "rank 1 (driver): the cluster did not start within %g s of %s: leaving", grace, signal.Signals(signum).name
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    def handler(signum: int, frame: Any) -> None:
        held.append(signum)
        if not deadline:
            timer = threading.Timer(grace, leave, args=(signum,))
            timer.daemon = True
            timer.start()
            deadline.append(timer)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}

    def release() -> None:
        for timer in deadline:
            timer.cancel()
        while previous:
            signum, old = previous.popitem()
            signal.signal(signum, old)

    return release


@contextmanager
def serve_through_signals(who: str, grace: float) -> Iterator[None]:
    """Keep serving through SIGINT/SIGTERM for the block: the driver ends the cluster, or ``grace`` seconds do."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    deadline: list[threading.Timer] = []

    def leave(signum: int) -> None:
        log.error(
            "%s: the driver did not shut the cluster down within %g s of %s: leaving",
            who,
            grace,
            signal.Signals(signum).name,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    def handler(signum: int, frame: Any) -> None:
        if deadline:
            return  # the same signal again (launcher and process group), or a later one: the deadline stands
        log.debug("%s: %s, serving until the driver has finished", who, signal.Signals(signum).name)
        timer = threading.Timer(grace, leave, args=(signum,))
        timer.daemon = True
        timer.start()
        deadline.append(timer)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for timer in deadline:
            timer.cancel()
        for signum, old in previous.items():
            signal.signal(signum, old)


def _shut_down(client: Client | None, address: str) -> None:
    """Close the scheduler and its workers; errors are logged (the barrier decides what follows)."""
    from distributed import Client

    try:
        if client is None:
            client = Client(address, timeout=10)
        client.shutdown()
    except Exception as exc:  # noqa: BLE001 - one unit: the shutdown; the barrier catches the rest
        log.warning("could not shut the dask cluster down cleanly: %s", exc)
    finally:
        if client is not None:
            client.close()


def _restore_scheduler_address(previous: str | None) -> None:
    """dask-mpi sets ``scheduler_address`` globally; it points at a dead scheduler now."""
    import dask

    if previous is None:
        dask.config.config.pop("scheduler_address", None)
    else:
        dask.config.set(scheduler_address=previous)


def _wait_for_ranks(comm: Any, timeout: float) -> bool:
    """Meet the other ranks at the last barrier; ``False`` if they do not arrive in time."""
    request = comm.Ibarrier()
    deadline = time.monotonic() + timeout
    while not request.Test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _abort(comm: Any) -> NoReturn:
    """End every rank of the job now, with status 1 (``MPI_Abort`` may return before it acts)."""
    sys.stdout.flush()
    sys.stderr.flush()
    comm.Abort(1)
    os._exit(1)


def launched_by_mpiexec() -> bool:
    """Whether this process is one rank of several started by an MPI launcher (mpiexec, srun)."""
    launched = launched_rank()
    return launched is not None and launched.size > 1


def install_abort_on_error() -> None:
    """Make an uncaught exception in this rank end the whole MPI job with status 1.

    Without it, a rank that fails while the others wait for it in an MPI call (a
    different rank failing before ``start_pipeline`` opens the cluster, say) leaves the job
    hanging until its walltime. The traceback is printed first, as usual. Installing it
    twice is harmless; ``python -m mpi4py script.py`` does the same for a whole script.
    """
    previous = sys.excepthook
    if getattr(previous, "_gyre_aborts", False):
        return

    def abort_on_error(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
        previous(kind, error, traceback)
        if os.getpid() in _RELEASED_PIDS:  # this rank already ended its part cleanly
            return
        from mpi4py import MPI

        if not MPI.Is_finalized():
            _abort(MPI.COMM_WORLD)

    abort_on_error._gyre_aborts = True  # type: ignore[attr-defined]
    sys.excepthook = abort_on_error
