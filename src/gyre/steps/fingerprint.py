"""Stable fingerprints of step functions and their arguments.

A function's fingerprint covers what decides its result: its bytecode, constants (recursively
through nested functions and comprehensions), the names it uses, its default arguments, the
values in its closure, and the *module-level data* it reads (numbers, strings, tuples,
lists, dicts, numpy arrays). Plain functions of the same module that it calls are followed
too, so editing a helper or a constant invalidates the steps that use it. Line numbers,
comments and the function's position in the file are not part of it.

Arguments are fingerprinted with ``dask.base.tokenize`` in deterministic mode: numbers,
strings, numpy arrays, dataclasses and containers of them hash by value, the same in every
process. Anything else must define ``__dask_tokenize__``.
"""

from __future__ import annotations

import hashlib
import types
from typing import Any

import numpy as np

__all__ = ["UnstableArgument", "code_fingerprint", "combine", "value_token"]

#: module-level values read by a function that count as data (and so enter its fingerprint)
_DATA_TYPES = (type(None), bool, int, float, complex, str, bytes, tuple, list, dict, set, frozenset)


class UnstableArgument(ValueError):
    """A value that cannot be hashed the same way in every process."""


def value_token(value: Any) -> str:
    """A hex token of ``value`` that is the same in every process, or ``UnstableArgument``."""
    from dask.base import tokenize
    from dask.tokenize import TokenizationError

    try:
        return str(tokenize(value, ensure_deterministic=True))
    except TokenizationError as exc:
        raise UnstableArgument(str(exc)) from exc


def combine(*parts: str) -> str:
    """One sha256 hex digest of several strings, order-sensitive."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def code_fingerprint(fn: types.FunctionType) -> str:
    """The fingerprint of ``fn``'s code, constants, defaults, closure and module-level data."""
    digest = hashlib.sha256()
    _feed_function(digest, fn, seen=set())
    return digest.hexdigest()


def _feed_function(digest: Any, fn: types.FunctionType, seen: set[int]) -> None:
    seen.add(id(fn))
    digest.update(f"{fn.__module__}.{fn.__qualname__}".encode())
    _feed_code(digest, fn.__code__)
    digest.update(_loose_token(fn.__defaults__).encode())
    digest.update(_loose_token(fn.__kwdefaults__).encode())
    for cell in fn.__closure__ or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned after the closure was made)
            continue
        _feed_value(digest, content, fn, seen)
    for name in sorted(_global_names(fn.__code__)):
        if name in fn.__globals__:
            digest.update(name.encode())
            _feed_value(digest, fn.__globals__[name], fn, seen)


def _feed_value(digest: Any, value: Any, owner: types.FunctionType, seen: set[int]) -> None:
    """Data enters the fingerprint; plain functions of the owner's module are followed."""
    if isinstance(value, types.FunctionType):
        if value.__module__ == owner.__module__ and id(value) not in seen:
            _feed_function(digest, value, seen)
        return
    wrapped = getattr(value, "__wrapped__", None)  # a step function referenced by another
    if isinstance(wrapped, types.FunctionType):
        _feed_value(digest, wrapped, owner, seen)
    elif isinstance(value, (*_DATA_TYPES, np.ndarray, np.generic)):
        digest.update(_loose_token(value).encode())


def _feed_code(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(digest, const)
        else:
            digest.update(_loose_token(const).encode())


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _loose_token(value: Any) -> str:
    """Like :func:`value_token`, but a value that cannot be hashed stably counts by its type only."""
    try:
        return value_token(value)
    except UnstableArgument:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
