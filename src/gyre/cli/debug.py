"""``gyre debug``: one (phase, run) in this process, from its recorded inputs, into pdb on an exception."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import PIPELINE_HELP, pipeline_of

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add ``debug`` to the subcommands."""
    debug = sub.add_parser(
        "debug", help="run one (phase, run) here from its recorded upstream artifacts; pdb on an exception"
    )
    debug.set_defaults(handler=_debug)
    debug.add_argument("pipeline", help=PIPELINE_HELP)
    debug.add_argument("--run", type=int, required=True, help="the run number")
    debug.add_argument("--phase", required=True, help="the phase's name")
    debug.add_argument("--no-pdb", action="store_true", help="print the traceback, do not stop in pdb")


def _debug(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, MissingArtifactError
    from ..launch.debug import debug_task

    pipeline = pipeline_of(args)
    try:
        result = debug_task(pipeline, phase=args.phase, run=args.run, post_mortem=not args.no_pdb)
    except (ConfigError, MissingArtifactError):
        raise  # the task could not be set up: a usage error, exit 2
    except Exception as exc:  # noqa: BLE001 - the one task's error, already shown (and debugged)
        if args.no_pdb:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        print(f"gyre: phase {args.phase!r} failed on run {args.run}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    artifacts = ", ".join(f"{k}: {v}" for k, v in result.artifacts.items()) or "no artifacts"
    print(f"phase {args.phase!r} on run {args.run}: done ({artifacts})")
    return 0
