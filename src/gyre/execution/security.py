"""Per-job TLS credentials: nobody but the job's owner talks to the clusters gyre starts across hosts.

A dask scheduler that listens on a node's network runs whatever any ``Client`` that reaches
it submits, as the job's owner. A cluster gyre starts over several hosts (dask-mpi ranks on
several nodes, a scheduler file for workers elsewhere, Slurm worker jobs) therefore speaks
TLS with credentials made for that one job: a fresh key and self-signed certificate
(distributed's ``Security.temporary()``), which every process of the job presents and
requires of its peers. A client without them is refused at the handshake.

The credentials travel inside the job: over MPI from rank 0 to the other ranks
(:meth:`JobCredentials.as_dask_config`), or in one PEM file that only the owner can read
(mode 0600), written next to the scheduler file (:func:`credentials_path`,
:func:`write_credentials`, :func:`load_credentials`), or by that file's path to processes a
script starts (:func:`security_from_file`). ``security=False`` (``--insecure``)
turns TLS off, for a cluster on a network only the owner reaches.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError

if TYPE_CHECKING:
    from distributed import Security

__all__ = [
    "JobCredentials",
    "credentials_path",
    "load_credentials",
    "make_credentials",
    "security_from_file",
    "write_credentials",
]

_ROLES = ("client", "scheduler", "worker")
_KEY_MARK = "PRIVATE KEY-----"


@dataclass(frozen=True)
class JobCredentials:
    """One job's TLS key and self-signed certificate (PEM text), used by every role and as the CA."""

    certificate: str
    key: str

    def security(self) -> Security:
        """A ``distributed.Security`` that requires TLS and holds these credentials in memory."""
        from distributed import Security

        fields: dict[str, Any] = {"tls_ca_file": self.certificate}
        for role in _ROLES:
            fields[f"tls_{role}_cert"] = self.certificate
            fields[f"tls_{role}_key"] = self.key
        return Security(require_encryption=True, **fields)

    def as_dask_config(self) -> dict[str, Any]:
        """The same as dask configuration (``distributed.comm.tls.*``): what dask-mpi's ranks read."""
        config: dict[str, Any] = {
            "distributed.comm.require-encryption": True,
            "distributed.comm.tls.ca-file": self.certificate,
        }
        for role in _ROLES:
            config[f"distributed.comm.tls.{role}.cert"] = self.certificate
            config[f"distributed.comm.tls.{role}.key"] = self.key
        return config

    def pem(self) -> str:
        """Key and certificate in one PEM text, as :func:`write_credentials` stores them."""
        return self.key.rstrip("\n") + "\n" + self.certificate.rstrip("\n") + "\n"

    @contextmanager
    def configured(self) -> Iterator[None]:
        """Dask configuration with these credentials for the block: servers and clients made in it use TLS."""
        import dask

        with dask.config.set(self.as_dask_config()):
            yield


def make_credentials() -> JobCredentials:
    """A fresh key and self-signed certificate for one job (needs the ``cryptography`` package)."""
    from distributed import Security

    try:
        temporary = Security.temporary()
    except ImportError as exc:
        raise ClusterError(
            "TLS for a cluster across hosts needs the 'cryptography' package, which is not installed: "
            "pip install 'gyre[mpi]' (or pip install cryptography), or turn TLS off with --insecure / "
            "security=False on a network only you can reach"
        ) from exc
    return JobCredentials(certificate=str(temporary.tls_ca_file), key=str(temporary.tls_scheduler_key))


def credentials_path(scheduler_file: str | Path) -> Path:
    """Where the credentials of the cluster behind ``scheduler_file`` are kept: ``<stem>.pem`` beside it."""
    return Path(scheduler_file).with_suffix(".pem")


def write_credentials(credentials: JobCredentials, path: str | Path) -> Path:
    """Store ``credentials`` in ``path``, readable by its owner only (mode 0600), atomically."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a umask cannot widen it, an older file of that name cannot either
        os.write(fd, credentials.pem().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def load_credentials(path: str | Path) -> JobCredentials:
    """Read credentials written by :func:`write_credentials`; refuse a file others can read.

    Raises
    ------
    ClusterError
        The file is missing, readable by the group or others, or holds no key and certificate.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise ClusterError(f"cannot read the cluster's TLS credentials {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClusterError(
            f"the cluster's TLS credentials {path} can be read by others (mode {stat.filemode(mode)}): anyone "
            f"who has them can run code as you on the cluster. Stop the cluster, remove {path} and start it again"
        )
    key, certificate = _split_pem(text)
    if not key or not certificate:
        raise ClusterError(
            f"{path} holds no TLS key and certificate (found {'a key' if key else 'no key'} and "
            f"{'a certificate' if certificate else 'no certificate'}): it is not a file gyre wrote for a cluster"
        )
    return JobCredentials(certificate=certificate, key=key)


def security_from_file(path: str | Path) -> Security:
    """A ``distributed.Security`` that names the credentials file ``path`` instead of holding its text.

    For processes started through a script (Slurm worker jobs, ``dask worker``): the script
    then carries the file's path (``--tls-ca-file``, ``--tls-cert``, ``--tls-key``), never
    the key itself. The file must be one :func:`write_credentials` wrote (it is checked as
    :func:`load_credentials` does) on a file system the processes share.
    """
    from distributed import Security

    path = Path(path).absolute()
    load_credentials(path)  # readable, the owner's only, a key and a certificate
    fields: dict[str, Any] = {"tls_ca_file": str(path)}
    for role in _ROLES:
        fields[f"tls_{role}_cert"] = str(path)
        fields[f"tls_{role}_key"] = str(path)
    return Security(require_encryption=True, **fields)


def _split_pem(text: str) -> tuple[str, str]:
    """The private key block and the certificate block of a PEM text."""
    key: list[str] = []
    certificate: list[str] = []
    target: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("-----BEGIN"):
            target = key if line.rstrip().endswith(_KEY_MARK) else certificate
        if target is not None:
            target.append(line)
        if line.startswith("-----END"):
            target = None
    return "".join(key), "".join(certificate)
