"""Load a pipeline named on the command line: ``path/to/module.py:name`` or ``package.module:name``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .errors import ConfigError
from .pipeline import Pipeline

__all__ = ["load_pipeline"]


def load_pipeline(spec: str) -> Pipeline:
    """The ``Pipeline`` named by ``spec``; ``name`` may be a Pipeline or a function returning one.

    Raises ``ConfigError`` saying what was found when the spec cannot be used.
    """
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not attribute:
        raise ConfigError(
            f"cannot read pipeline {spec!r}: use path/to/module.py:name or package.module:name "
            "(name is a Pipeline or a function returning one)"
        )
    if target.endswith(".py") or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise ConfigError(f"pipeline module {path} does not exist")
        module_name = f"gyre_user_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        sys.path.insert(0, str(path.parent))  # so the module's own imports of its neighbours work
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
        # worker processes cannot import a module loaded from a path: ship its classes by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(f"cannot import module {target!r}: {exc}") from exc
    if not hasattr(module, attribute):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline) or callable(v))
        raise ConfigError(f"{target} has no {attribute!r}; candidates: {', '.join(found[:10]) or 'none'}")
    value = getattr(module, attribute)
    if callable(value) and not isinstance(value, Pipeline):
        try:
            value = value()
        except TypeError as exc:
            raise ConfigError(f"{spec}: calling {attribute}() failed: {exc}") from exc
    if not isinstance(value, Pipeline):
        raise ConfigError(f"{spec} is a {type(value).__name__}, not a gyre.Pipeline")
    return value
