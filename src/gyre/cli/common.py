"""What several subcommands share: run ranges, the pipeline argument, the options of a plan."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..job.options import JobOptions, ResumePolicy
from ..loader import load_pipeline
from ..pipeline import Pipeline
from ..runs import parse_run_list, parse_run_range

__all__ = ["add_plan_options", "pipeline_of", "plan_options", "run_range"]

PIPELINE_HELP = "path/to/module.py:name or package.module:name"


def run_range(text: str) -> tuple[int, int]:
    """``--runs`` as an inclusive (first, last) pair; argparse reports a bad one."""
    try:
        return parse_run_range(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The options that change what a job computes (and so its plan): skips, forcing, trust, seed."""
    parser.add_argument("--skip", default="", help="runs to leave out, e.g. 7,9,20-25")
    parser.add_argument("--seed", type=int, default=None, help="override the pipeline's seed")
    parser.add_argument("--force", action="store_true", help="recompute everything, ignoring finished work")
    parser.add_argument(
        "--force-phase", action="append", default=[], metavar="NAME", help="recompute NAME and all later phases"
    )
    parser.add_argument(
        "--trust-mtime", action="store_true", help="reuse artifacts whose size and mtime match (no checksums)"
    )
    parser.add_argument(
        "--hash-run-files", action="store_true", help="identify run files by content, not by size and mtime"
    )


def pipeline_of(args: argparse.Namespace) -> Pipeline:
    """The pipeline named by ``args.pipeline``, with ``--seed`` applied."""
    pipeline = load_pipeline(args.pipeline)
    if getattr(args, "seed", None) is not None:
        pipeline.seed = args.seed
    return pipeline


def plan_options(args: argparse.Namespace, **more: object) -> JobOptions:
    """The job options given by :func:`add_plan_options`'s arguments (and ``more``)."""
    return JobOptions(
        force=args.force,
        force_phases=tuple(args.force_phase),
        resume=ResumePolicy(
            verify="stat" if args.trust_mtime else "checksum",
            run_identity="content" if args.hash_run_files else "stat",
        ),
        runs_to_skip=frozenset(parse_run_list(args.skip)),
        **more,  # type: ignore[arg-type]
    )
