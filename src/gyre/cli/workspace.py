"""``gyre init``, ``gyre assets`` and ``gyre clean``: making a workspace, its assets, and removing a phase's work."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from ..pipeline import Pipeline
from .common import PIPELINE_HELP, pipeline_of

__all__ = ["TEMPLATE", "add_commands", "fill_batch_script"]

TEMPLATE = Path(__file__).resolve().parent.parent / "workspace_template"


def add_commands(sub: Any) -> None:
    """Add ``init``, ``assets`` and ``clean`` to the subcommands."""
    init = sub.add_parser("init", help="copy a starting workspace (pipeline module, config, batch scripts)")
    init.set_defaults(handler=lambda args: _init(args.directory))
    init.add_argument("directory", type=Path)

    assets = sub.add_parser("assets", help="create the workspace and all assets, touching no run")
    assets.set_defaults(handler=_assets)
    assets.add_argument("pipeline", help=PIPELINE_HELP)

    clean = sub.add_parser("clean", help="remove a phase's artifacts and records (shows them first)")
    clean.set_defaults(handler=_clean)
    clean.add_argument("pipeline", help=PIPELINE_HELP)
    clean.add_argument("--phase", action="append", required=True, metavar="NAME", help="a phase to clean (repeatable)")
    clean.add_argument("--yes", "-y", action="store_true", help="remove without asking")


def fill_batch_script(text: str, *, analysis_dir: Path, environment: Path | None = None) -> str:
    """A batch script template with its analysis directory and Python environment filled in.

    ``@ANALYSIS_DIR@`` becomes ``analysis_dir`` (the job's ``--chdir``) and ``@GYRE_ENV@`` the
    environment whose ``bin/`` holds ``gyre`` and ``mpiexec``: by default the one running now.
    """
    env = Path(sys.prefix) if environment is None else environment
    return text.replace("@ANALYSIS_DIR@", str(analysis_dir)).replace("@GYRE_ENV@", str(env))


def _init(directory: Path) -> int:
    if directory.exists() and any(directory.iterdir()):
        print(f"gyre: error: {directory} exists and is not empty", file=sys.stderr)
        return 2
    shutil.copytree(TEMPLATE, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for script in sorted(directory.glob("*.sbatch")):
        script.write_text(fill_batch_script(script.read_text(), analysis_dir=directory.resolve()))
    print(f"new gyre workspace in {directory}: edit pipeline.py and config.toml, then")
    print(f"  gyre run {directory / 'pipeline.py'}:pipeline --runs 1-10 --procs 2")
    return 0


def _assets(args: argparse.Namespace) -> int:
    from ..launch import generate_assets

    for directory in generate_assets(pipeline_of(args)):
        print(f"assets ready in {directory}")
    return 0


def _clean(args: argparse.Namespace) -> int:
    from ..workspace.lock import WorkspaceLock
    from ..workspace.manifest import Manifest

    pipeline = pipeline_of(args)
    phases = [pipeline.phase(name) for name in dict.fromkeys(args.phase)]  # ConfigError names the phases
    workspace = Path(pipeline.workspace_path)
    manifest = Manifest(workspace)
    doomed: list[Path] = []
    for phase in phases:
        folder = phase.artifact_dir(workspace)
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        journals = [p for p in (manifest.journal(phase.name), manifest.root / phase.name) if p.exists()]
        records = sum(1 for _ in manifest.records(phase.name))
        size = sum(p.stat().st_size for p in files)
        print(
            f"phase {phase.name!r}: {len(files)} artifact file{'' if len(files) == 1 else 's'} "
            f"({size / 1e6:.1f} MB) in {folder}, {records} record{'' if records == 1 else 's'} in "
            + (", ".join(map(str, journals)) or "no journal")
        )
        doomed += files + journals
    later = _later_phases(pipeline, [p.name for p in phases])
    if later:
        print(f"their runs in later phases ({', '.join(later)}) will be recomputed by the next job")
    if not doomed:
        print("nothing to remove")
        return 0
    if not args.yes and not _confirm("remove them?"):
        print("nothing removed (pass --yes to remove without asking)", file=sys.stderr)
        return 1
    with WorkspaceLock(workspace):  # not while a job writes into the workspace
        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    print(f"removed {len(doomed)} file{'' if len(doomed) == 1 else 's'}")
    return 0


def _later_phases(pipeline: Pipeline, cleaned: list[str]) -> list[str]:
    names = [p.name for p in pipeline.phases]
    first = min(names.index(n) for n in cleaned)
    return [n for n in names[first + 1 :] if n not in cleaned]


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False
