"""The ``gyre`` command: one module per group of subcommands, ``main`` the console script.

``run`` (run a pipeline, or only show its plan), ``inspect`` (validate, graph, list,
status, provenance), ``workspace`` (init, assets, clean) and ``debug`` (one task in pdb).
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
from . import debug, inspect, run, workspace
from .workspace import TEMPLATE, fill_batch_script

__all__ = ["TEMPLATE", "fill_batch_script", "main"]

_GROUPS = (run, inspect, workspace, debug)


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
    """Entry point of the ``gyre`` console script; returns the exit code."""
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
