"""``gyre validate``, ``graph``, ``list``, ``status`` and ``provenance``: looking at a pipeline and its workspace."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..pipeline import Pipeline
from ..runs import discover_runs, runs_phrase
from .common import PIPELINE_HELP, add_plan_options, pipeline_of, plan_options, run_range
from .run import print_plan

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add ``validate``, ``graph``, ``list``, ``status`` and ``provenance`` to the subcommands."""
    validate = sub.add_parser(
        "validate", help="check schemas and run files, and show what would run and why (computes nothing)"
    )
    validate.set_defaults(handler=_validate)
    validate.add_argument("pipeline", help=PIPELINE_HELP)
    validate.add_argument("--runs", type=run_range, default=None, help="also check these runs' files and plan them")
    add_plan_options(validate)

    graph = sub.add_parser("graph", help="print the phase/run graph, nodes coloured by the plan")
    graph.set_defaults(handler=_graph)
    graph.add_argument("pipeline", help=PIPELINE_HELP)
    graph.add_argument("--runs", type=run_range, required=True)
    graph.add_argument("--format", choices=["dot"], default="dot")
    add_plan_options(graph)

    listing = sub.add_parser("list", help="a pipeline's phases: switches, schemas, configuration")
    listing.set_defaults(handler=_list)
    listing.add_argument("pipeline", help=PIPELINE_HELP)

    status = sub.add_parser("status", help="per phase: runs done / stale / missing / failed")
    status.set_defaults(handler=_status)
    status.add_argument("target", metavar="PIPELINE_OR_WORKSPACE", help=f"{PIPELINE_HELP}, or a workspace directory")
    status.add_argument("--trust-mtime", action="store_true", help="check sizes and mtimes, not checksums")

    provenance = sub.add_parser("provenance", help="how the artifact of one (phase, run) was made")
    provenance.set_defaults(handler=_provenance)
    provenance.add_argument(
        "target", metavar="PIPELINE_OR_WORKSPACE", help=f"{PIPELINE_HELP}, or a workspace directory"
    )
    provenance.add_argument("phase")
    provenance.add_argument("run", type=int)


def _validate(args: argparse.Namespace) -> int:
    from ..job.dryrun import check_run_files

    pipeline = pipeline_of(args)
    pipeline.validate()
    print(f"pipeline {pipeline.name}: schemas fit")
    if args.runs is None:
        for phase, active in zip(pipeline.phases, pipeline.active):
            print(f"  {phase.name:<20} {'active' if active else 'inactive (uses its cached artifacts)'}")
        print("give --runs A-B to check those run files and see what would be computed, and why")
        return 0
    selection = discover_runs(
        pipeline.trace_path, *args.runs, pattern=pipeline.run_pattern, runs_to_skip=plan_options(args).runs_to_skip
    )
    problems = check_run_files(pipeline, selection.found)
    first = pipeline.phases[0]
    if first.incoming_schema and pipeline.active[0]:
        good = len(selection.found) - len(problems)
        print(f"run files: {good} of {len(selection.found)} hold what phase {first.name!r} needs")
    for run_file, found in sorted(problems.items(), key=lambda item: item[0].run):
        print(f"  run {run_file.run} ({run_file.path}): {'; '.join(found)}")
    print_plan(pipeline, args, as_json=False)
    return 1 if problems else 0


def _graph(args: argparse.Namespace) -> int:
    from ..job.chains import compile_chains, to_dot
    from ..job.dryrun import dry_run

    pipeline = pipeline_of(args)
    options = plan_options(args)
    plan = dry_run(pipeline, args.runs[0], args.runs[1], options)
    selection = discover_runs(
        pipeline.trace_path, *args.runs, pattern=pipeline.run_pattern, runs_to_skip=options.runs_to_skip
    )
    chains = compile_chains(pipeline, selection, seed=plan.seed or 0, token="graph")
    states = {key: state.value for key, state in plan.states().items()}
    sys.stdout.write(to_dot(chains, name=pipeline.name, states=states))
    return 0


def _list(args: argparse.Namespace) -> int:
    pipeline = pipeline_of(args)
    seed = pipeline.seed if pipeline.seed is not None else "the workspace's own"
    print(f"pipeline {pipeline.name!r}: workspace {pipeline.workspace_path}, seed {seed}")
    print(f"  run files {pipeline.trace_path / pipeline.run_pattern}")
    for index, (phase, active) in enumerate(zip(pipeline.phases, pipeline.active), start=1):
        state = "active" if active else "inactive (uses its cached artifacts)"
        print(f"  {index}. {phase.name}  {state}  ({type(phase).__qualname__}, version {getattr(phase, 'version', 1)})")
        for label, schema in (("takes", phase.incoming_schema), ("gives", phase.outgoing_schema)):
            if schema:
                print(f"     {label}  " + ", ".join(f"{k}: {v or 'any'}" for k, v in schema.datasets.items()))
        print(f"     config {json.dumps(dict(phase.config()), sort_keys=True, default=repr)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..workspace.status import render_status, workspace_status

    verify = "stat" if args.trust_mtime else "checksum"
    pipeline = _status_pipeline(args.target)
    if pipeline is None:
        print(render_status(Path(args.target), verify=verify))
        return 0
    workspace = Path(pipeline.workspace_path)
    if not (workspace / ".gyre").is_dir():
        print(f"pipeline {pipeline.name!r}: no job has run in its workspace {workspace} yet")
        return 0
    table = workspace_status(workspace, verify=verify, phases=[p.name for p in pipeline.phases])
    notes = _stale_for_pipeline(pipeline, table, verify)
    print(render_status(workspace, table=table, notes=notes))
    return 0


def _stale_for_pipeline(pipeline: Pipeline, table: dict[str, dict[str, list[int]]], verify: str) -> list[str]:
    """Move to *stale* the done runs that the pipeline's plan would recompute; the lines saying why.

    The plan covers the runs known to the workspace, with the pipeline as it is now, so a
    changed configuration, code version or run file shows here too.
    """
    from ..errors import NoRunsError
    from ..job.dryrun import PlanState, dry_run
    from ..job.options import JobOptions, ResumePolicy

    known = sorted({run for columns in table.values() for runs in columns.values() for run in runs})
    if not known:
        return []
    gaps = frozenset(range(known[0], known[-1] + 1)) - set(known)
    options = JobOptions(resume=ResumePolicy(verify=verify), runs_to_skip=gaps)
    try:
        plan = dry_run(pipeline, known[0], known[-1], options)
    except NoRunsError:
        return [f"  (no run file of these runs is in {pipeline.trace_path}: configuration changes are not checked)"]
    moved: dict[tuple[str, str], list[int]] = defaultdict(list)
    for task in plan.tasks:
        columns = table.get(task.phase)
        if columns is not None and task.state == PlanState.STALE and task.run in columns["done"]:
            columns["done"].remove(task.run)
            columns["stale"] = sorted([*columns["stale"], task.run])
            moved[(task.phase, task.reason)].append(task.run)
    order = {p.name: i for i, p in enumerate(pipeline.phases)}
    return [
        f"  {phase} stale for this pipeline: {runs_phrase(runs)}: {reason}"
        for (phase, reason), runs in sorted(moved.items(), key=lambda kv: (order[kv[0][0]], kv[1][0]))
    ]


def _status_pipeline(target: str) -> Pipeline | None:
    """The pipeline ``gyre status``/``provenance`` was given, or ``None`` for a workspace directory.

    A directory made by ``gyre init`` (holding ``pipeline.py`` and no ``.gyre/``) means its pipeline.
    """
    from ..loader import load_pipeline

    path = Path(target)
    if path.is_dir():
        if not (path / ".gyre").is_dir() and (path / "pipeline.py").is_file():
            return load_pipeline(f"{path / 'pipeline.py'}:pipeline")
        return None
    if ":" not in target:
        raise ConfigError(f"{target} is neither a workspace directory nor a pipeline ({PIPELINE_HELP})")
    return load_pipeline(target)


def _provenance(args: argparse.Namespace) -> int:
    from ..workspace.status import render_provenance

    pipeline = _status_pipeline(args.target)
    workspace = Path(args.target) if pipeline is None else Path(pipeline.workspace_path)
    print(render_provenance(workspace, args.phase, args.run))
    return 0
