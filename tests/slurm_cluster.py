"""A real one-node Slurm for the tests: munged, slurmctld and slurmd started from a generated slurm.conf.

The Debian packages (``slurmctld slurmd slurm-client munge``) are installed with apt-get when
missing and the tests run as root. The node declares 8 CPUs whatever the machine has
(``SlurmdParameters=config_overrides``) and its partition oversubscribes, so that jobs of 4
to 6 tasks fit on a 2-core machine. Everything the daemons write lives in one temporary
directory; :meth:`SlurmCluster.stop` ends the daemons this module started, by their pids.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
NODE_CPUS = 8
#: job states after which a job does not change any more
FINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
)


class SlurmUnavailable(RuntimeError):
    """Slurm could not be installed or started here; the message says which step failed."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pids() -> list[int]:
    return [
        int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and int(entry.name) != os.getpid()
    ]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _describe(pid: int) -> str:
    """A process as ``pid (job N): command line``, for a message."""
    job = next((item for item in _environ(pid).split(b"\0") if item.startswith(b"SLURM_JOB_ID=")), b"=?")
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = "?"
    return f"{pid} (job {job.split(b'=')[1].decode()}): {command[:200]}"


def _sbin(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if found is None:
        raise SlurmUnavailable(f"{name} is not installed")
    return found


def install_packages() -> None:
    """apt-get the Slurm and munge packages unless their daemons are already there (root only)."""
    if all(shutil.which(d, path="/usr/sbin:/usr/bin:/sbin") for d in DAEMONS) and shutil.which("sbatch"):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            f"Slurm is not installed and only root may install it: apt-get install {' '.join(PACKAGES)}"
        )
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable("Slurm is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise SlurmUnavailable(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr[-2000:]}")


@dataclass
class SlurmCluster:
    """One controller and one node on this host; ``env`` is what a client command needs (``SLURM_CONF``)."""

    root: Path
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        """The generated slurm.conf."""
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment of this process plus ``SLURM_CONF`` (and no Slurm job variables of an outer job)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf)
        return env

    def start(self, timeout: float = 60.0) -> None:
        """Write slurm.conf, start munged (unless one already answers), slurmctld and slurmd; wait for the node."""
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._write_conf()
        self._start_munge()
        self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-f", str(self.conf)])
        self._spawn("slurmd", [_sbin("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SlurmUnavailable(f"{name} ended at start-up; its log:\n{self.daemon_log(name)}")
            state = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.strip()
            if state.startswith(("idle", "mixed", "alloc")):
                return
            time.sleep(0.5)
        raise SlurmUnavailable(
            f"the Slurm node {self.node} is not idle after {timeout:g} s (sinfo: {state!r}); slurmd log:\n"
            + self.daemon_log("slurmd")
        )

    def stop(self) -> None:
        """Cancel every job, then end the daemons this cluster started (SIGTERM, SIGKILL after 10 s)."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.run(["scancel", "--full", "--user", "root"], check=False, timeout=20)
        for pid in self.wait_until_no_job_runs(timeout=15):  # none should outlive this cluster
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid.split()[0]), signal.SIGKILL)
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run(
        self, command: Sequence[str], *, check: bool = True, timeout: float = 60.0, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        done = subprocess.run(
            list(command), env=self.env, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr}{done.stdout}")
        return done

    def sbatch(self, script: Path, *options: str, cwd: Path, env: Mapping[str, str] | None = None) -> int:
        """Submit ``script`` from ``cwd`` with extra command-line ``options``; returns the job id."""
        done = subprocess.run(
            ["sbatch", "--parsable", *options, str(script)],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"sbatch {' '.join(options)} {script} failed: {done.stderr}")
        return int(done.stdout.strip().split(";")[0])

    def wait_until_no_job_runs(self, timeout: float = 30.0) -> list[str]:
        """Wait until no process of an earlier job is left (their environment names a ``SLURM_JOB_ID``).

        Slurm reports a job ended when its batch script has; its MPI ranks can take a moment
        more to go, and a new MPI job started beside them on this one node can hang or fail in
        ``MPI_Init``. Returns the processes still there after ``timeout`` (normally none).
        """
        end = time.monotonic() + timeout
        while True:
            left = self._job_processes()
            if not left or time.monotonic() > end:
                return [_describe(pid) for pid in left]
            time.sleep(0.2)

    def _job_processes(self) -> list[int]:
        """The processes of this cluster's jobs: their environment names a job and this slurm.conf."""
        mine = f"SLURM_CONF={self.conf}".encode()
        return [
            pid for pid in _pids() if b"SLURM_JOB_ID=" in (environ := _environ(pid)) and mine in environ.split(b"\0")
        ]

    def job(self, job_id: int) -> dict[str, str]:
        """The fields of ``scontrol show job`` (JobState, ExitCode, StdOut, ...); empty once Slurm forgot it."""
        done = self.run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
        return dict(re.findall(r"(\w+)=(\S*)", done.stdout)) if done.returncode == 0 else {}

    def wait_for_state(self, job_id: int, states: Sequence[str], timeout: float) -> dict[str, str]:
        """Poll until the job is in one of ``states`` (or a final state); returns its fields."""
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        while time.monotonic() < deadline:
            fields = self.job(job_id)
            state = fields.get("JobState", "")
            if state in states or state in FINAL_STATES:
                return fields
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} not in {list(states)} after {timeout:g} s: {fields}")

    def wait(self, job_id: int, timeout: float) -> dict[str, str]:
        """Wait for the job to end; returns its fields (JobState, ExitCode, ...)."""
        fields = self.wait_for_state(job_id, sorted(FINAL_STATES), timeout)
        if fields.get("JobState") not in FINAL_STATES:
            raise AssertionError(f"job {job_id} did not end: {fields}")
        return fields

    def queue(self) -> list[str]:
        """The ids of the jobs squeue still lists."""
        return self.run(["squeue", "-h", "-o", "%i"]).stdout.split()

    def daemon_log(self, name: str) -> str:
        """The end of what a daemon printed and of its log file."""
        text = ""
        for path in (self.root / "log" / f"{name}.out", self.root / "log" / f"{name}.log"):
            if path.exists():
                text += path.read_text(errors="replace")[-3000:]
        return text or f"(nothing from {name})"

    def _write_conf(self) -> None:
        root = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=gyretest",
                    # job ids never seen on this host before: MPICH names its shared memory after the
                    # job step ("1.0"), and a segment a killed job left in /dev/shm makes the next job
                    # of the same id hang in MPI_Init (real clusters never reuse an id)
                    f"FirstJobId={random.randrange(100_000, 60_000_000)}",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    "MpiDefault=none",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "SchedulerType=sched/backfill",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "ReturnToService=2",
                    "SlurmdParameters=config_overrides",
                    "MinJobAge=600",
                    "KillWait=10",
                    "InactiveLimit=0",
                    "SchedulerParameters=sched_interval=2",
                    f"StateSaveLocation={root / 'state'}",
                    f"SlurmdSpoolDir={root / 'spool'}",
                    f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} Sockets=1 CoresPerSocket={NODE_CPUS} "
                    "ThreadsPerCore=1 RealMemory=16000 State=UNKNOWN",
                    f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES",
                    "",
                ]
            )
        )

    def _start_munge(self) -> None:
        if _munge_answers():
            return
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run([_sbin("mungekey"), "--create", "--force"], check=True, capture_output=True)
            with contextlib.suppress(KeyError, OSError):
                shutil.chown(key, "munge", "munge")
        for directory in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(directory).mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(KeyError, OSError):
                shutil.chown(directory, "munge", "munge")
        self._spawn("munged", [_sbin("munged"), "--foreground", "--force"])
        deadline = time.monotonic() + 20
        while not _munge_answers():
            if time.monotonic() > deadline or self.processes["munged"].poll() is not None:
                raise SlurmUnavailable(f"munged did not answer; its log:\n{self.daemon_log('munged')}")
            time.sleep(0.2)

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 - the daemon keeps it
        with log:
            process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process


def _munge_answers() -> bool:
    munge, unmunge = shutil.which("munge"), shutil.which("unmunge")
    if munge is None or unmunge is None:
        return False
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        credential = subprocess.run([munge, "-n"], capture_output=True, timeout=5, check=True).stdout
        subprocess.run([unmunge], input=credential, capture_output=True, timeout=5, check=True)
        return True
    return False
