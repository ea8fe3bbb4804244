"""A script that starts a pipeline without ``if __name__ == "__main__":``, told in one line.

A local cluster's worker processes are started with ``spawn``: each imports the script
that started the job again, as ``__mp_main__``. Without the guard, that import runs the
script's ``start_pipeline(...)`` once more in every worker, which then finds the
workspace locked by its own parent and fails to start — pages of lock and nanny errors
that never name the cause. :func:`refuse_unguarded_main` names it before any cluster
starts (the script's own call, read from its source), and in a worker that imports the
script anyway.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import FrameType

from ..errors import ConfigError
from ..execution import ExecutionModel, LocalModel

__all__ = ["refuse_unguarded_main"]

_START_METHODS_THAT_IMPORT_MAIN = ("spawn", "forkserver")


def refuse_unguarded_main(model: ExecutionModel, *, entry: str = "start_pipeline") -> None:
    """Raise ``ConfigError`` when ``entry`` runs from the top level of a script without the ``__main__`` guard.

    Only a local cluster (its workers import the script again) is checked.
    """
    if not isinstance(model, LocalModel):
        return
    main = sys.modules.get("__main__")
    if getattr(main, "__name__", None) == "__mp_main__":
        raise ConfigError(_message(entry, getattr(main, "__file__", None) or "the script", worker=True))
    import dask.config

    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") not in _START_METHODS_THAT_IMPORT_MAIN:
        return
    frame = _main_module_frame()
    path = frame.f_globals.get("__file__") if frame is not None else None
    if frame is None or not path:
        return  # an interactive session or a notebook: workers do not import it
    if _guarded(Path(path), frame.f_lineno) is False:
        raise ConfigError(_message(entry, path, worker=False))


def _main_module_frame() -> FrameType | None:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            return frame
        frame = frame.f_back
    return None


def _guarded(path: Path, line: int) -> bool | None:
    """Whether the top-level statement of ``path`` running at ``line`` is an ``if __name__ == "__main__":``."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return _is_main_test(node)
    return None


def _is_main_test(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.comparators) != 1:
        return False
    sides = [node.test.left, node.test.comparators[0]]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"} and isinstance(node.test.ops[0], ast.Eq)


def _message(entry: str, path: str, *, worker: bool) -> str:
    where = "a worker process is importing" if worker else "worker processes would import"
    return (
        f'{entry} is called at the top level of {path} without `if __name__ == "__main__":`, and '
        f"{where} that script again (they start with 'spawn'): put the call under that guard"
    )
