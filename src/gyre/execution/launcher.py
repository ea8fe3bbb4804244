"""Whether this process is one of several ranks an MPI launcher started, and refusing N copies of one job.

``mpiexec -n 4 python workflow.py`` runs the whole script four times. With
``cluster="mpi"`` (``gyre run --mpi``) that is the plan: the ranks become scheduler, driver
and workers. With any model that runs the job in this process or in a cluster of its own,
it is four copies of the job racing on one workspace. :func:`refuse_launched_copies` stops
them: every rank but rank 0 leaves quietly (status 0) and rank 0 raises one clear error.

The launchers are recognised by what they put into each rank's environment: hydra
(MPICH's ``mpiexec``, and Slurm's ``srun --mpi=pmi2``) sets ``PMI_RANK``/``PMI_SIZE``, Open MPI
``OMPI_COMM_WORLD_RANK``/``OMPI_COMM_WORLD_SIZE``, MVAPICH ``MV2_COMM_WORLD_*``, and Slurm sets
``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS`` in the tasks of a job step (``srun``), not in the
batch script itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ClusterError
from .base import ExecutionModel

__all__ = ["LaunchedRank", "launched_rank", "refuse_launched_copies"]

log = logging.getLogger(__name__)

# (launcher, rank variable, size variable), the MPI ones before Slurm's: mpiexec inside a
# batch job starts its ranks through srun, whose step variables then describe the proxies
_LAUNCHERS = (
    ("PMI", "PMI_RANK", "PMI_SIZE"),
    ("Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("MVAPICH", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),
    ("Slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),
)


@dataclass(frozen=True)
class LaunchedRank:
    """This process's place among the ranks a launcher started, and the variable that says so."""

    launcher: str
    rank: int
    size: int
    size_variable: str


def launched_rank(environ: Mapping[str, str] | None = None) -> LaunchedRank | None:
    """The rank and world size a launcher gave this process; ``None`` when none did."""
    env = os.environ if environ is None else environ
    for launcher, rank_variable, size_variable in _LAUNCHERS:
        rank, size = env.get(rank_variable, ""), env.get(size_variable, "")
        if rank.isdigit() and size.isdigit():
            return LaunchedRank(launcher, int(rank), int(size), size_variable)
    return None


def refuse_launched_copies(model: ExecutionModel, *, entry: str, environ: Mapping[str, str] | None = None) -> None:
    """Stop when ``model`` would run one copy of the job per rank of a multi-rank launch.

    Only models that run the job in this process or in a cluster they start
    (``model.one_job_per_process``) are checked; a scheduler the caller connects to may be
    one that the ranks of a dask-mpi job serve. Ranks other than 0 leave with status 0 (no
    copy of the message); rank 0 raises ``ClusterError`` naming ``cluster="mpi"``/``--mpi``.
    ``entry`` names the call for the message (``"start_pipeline"``, ``"Workflow.run"``, ...).
    """
    if not model.one_job_per_process:
        return
    launched = launched_rank(environ)
    if launched is None or launched.size < 2:
        return
    if launched.rank != 0:
        log.debug("rank %d of %d: leaving, rank 0 reports the wrong launch", launched.rank, launched.size)
        raise SystemExit(0)
    raise ClusterError(
        f"{entry} runs on {launched.size} ranks of an MPI launcher ({launched.launcher}: "
        f"{launched.size_variable}={launched.size}) with the {model.name!r} execution model, so every rank "
        f'would run the whole job: {launched.size} copies on one workspace. Pass cluster="mpi" '
        "(gyre run ... --mpi) to make the ranks one dask cluster, or start the script without mpiexec/srun"
    )
