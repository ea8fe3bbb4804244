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
    """Whether the module-level code of ``path`` running at ``line`` sits under an ``if __name__ == "__main__":``.

    ``None`` when the source cannot be read or parsed (nothing is refused then).
    """
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    statements: list[ast.stmt] = tree.body
    while statements:
        node = next((n for n in statements if n.lineno <= line <= (n.end_lineno or n.lineno)), None)
        if node is None:
            return None
        if isinstance(node, ast.If) and _is_main_test(node.test):
            return True
        # the statement running may be nested in try/with/for/if blocks at module level
        statements = [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
        for handler in getattr(node, "handlers", []):
            statements += handler.body
    return False


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` compares ``__name__`` with ``"__main__"`` (possibly within ``and``)."""
    for node in ast.walk(test):
        if isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.ops[0], ast.Eq):
            sides = [node.left, node.comparators[0]]
            names = {side.id for side in sides if isinstance(side, ast.Name)}
            values = {side.value for side in sides if isinstance(side, ast.Constant)}
            if names == {"__name__"} and values == {"__main__"}:
                return True
    return False


def _message(entry: str, path: str, *, worker: bool) -> str:
    where = "a worker process is importing" if worker else "worker processes would import"
    return (
        f'{entry} is called at the top level of {path} without `if __name__ == "__main__":`, and '
        f"{where} that script again (they start with 'spawn'): put the call under that guard"
    )
