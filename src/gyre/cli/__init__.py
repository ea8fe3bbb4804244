"""The ``gyre`` command: one module per group of subcommands, ``main`` the console script.

``run`` (run a pipeline, or only show its plan), ``inspect`` (validate, graph, list,
status, provenance), ``workspace`` (init, assets, clean), ``debug`` (one task in pdb) and
``cluster`` (under mpiexec, a cluster others join through a scheduler file).
Every subcommand that names a pipeline takes it as ``path/to/module.py:name`` or
``package.module:name``. Exit status: 0 done, 1 failed runs (or, for ``--dry-run``,
something would be computed), 2 a usage or configuration error, 3 stopped at the deadline
(resumable), 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import GyreError
from . import cluster, debug, inspect, run, workspace
from .workspace import TEMPLATE, fill_batch_script

__all__ = ["TEMPLATE", "fill_batch_script", "main"]

_GROUPS = (run, inspect, workspace, debug, cluster)


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="gyre", description="Phase-structured analysis over HDF5 run files on dask.")
    parser.add_argument("--version", action="version", version=f"gyre {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in _GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gyre`` console script; returns the exit code.

    Until a job starts, a SIGTERM or SIGINT ends the command at once with 128 + the signal
    (see the package's ``__init__``); ``run_job`` then takes the signals over.
    """
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger = logging.getLogger("gyre")
    logger.addHandler(handler)  # for this command only: main() called twice logs each line once
    try:
        return int(args.handler(args))
    except GyreError as exc:
        print(f"gyre: error: {exc}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)
