"""Stage: one step of a stream, a function with a worker count, linked in series or forked."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

from ..errors import ConfigError

__all__ = ["Stage", "apply_stage"]


class Stage:
    """A function applied to every item that reaches it, by at most ``workers`` workers at once.

    Parameters
    ----------
    fn
        Called as ``fn(item)`` (or ``fn(item, state)`` with ``init``). It returns one result,
        ``None`` to drop the item, or a generator for several results (consumed where it runs).
    workers
        The most items this stage processes at the same time.
    ordered
        ``True``: results leave the stage in the order items arrived at it.
        ``False``: as they complete.
    init
        Called without arguments once per worker process (once in total in-process) before
        the stage's first item there; its return value (a calibration, an open file) is passed
        to ``fn`` as ``state``.
    name
        Names the stage in results, errors and the dashboard; defaults to ``fn.__name__``.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        workers: int = 1,
        ordered: bool = True,
        init: Callable[[], Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"a stage needs a callable, got {type(fn).__name__}")
        if workers < 1:
            raise ConfigError(f"stage {name or fn!r}: workers must be at least 1, got {workers}")
        if init is not None and not callable(init):
            raise ConfigError(f"stage {name or fn!r}: init must be callable, got {type(init).__name__}")
        self.fn = fn
        self.workers = int(workers)
        self.ordered = bool(ordered)
        self.init = init
        self.name: str = name or str(getattr(fn, "__name__", "stage"))
        self.parent: Stage | None = None
        self.children: list[Stage] = []

    def __repr__(self) -> str:
        kind = "ordered" if self.ordered else "unordered"
        return f"Stage({self.name!r}, workers={self.workers}, {kind})"

    def link(self, child: Stage) -> Stage:
        """Feed this stage's results to ``child`` and return ``child``.

        ``a.link(b).link(c)`` chains in series; ``a.link(b); a.link(c)`` forks, giving every
        result of ``a`` to both ``b`` and ``c``.
        """
        if not isinstance(child, Stage):
            raise ConfigError(f"stage {self.name!r} can only link to a Stage, got {type(child).__name__}")
        if child.parent is not None:
            raise ConfigError(
                f"stage {child.name!r} is already fed by {child.parent.name!r}; a stage has one "
                "parent: make a second Stage of the same function to feed it from elsewhere"
            )
        ancestor: Stage | None = self
        while ancestor is not None:
            if ancestor is child:
                raise ConfigError(f"linking {self.name!r} → {child.name!r} would make a cycle")
            ancestor = ancestor.parent
        child.parent = self
        self.children.append(child)
        return child

    def walk(self) -> Iterator[Stage]:
        """This stage, then every stage it feeds (each parent before its children)."""
        yield self
        for child in self.children:
            yield from child.walk()


def apply_stage(fn: Callable[..., Any], item: Any, *state: Any) -> list[Any]:
    """Call a stage function on one item and return its results as a list (``None`` ones dropped)."""
    result = fn(item, *state)
    if result is None:
        return []
    if isinstance(result, Generator):
        return [value for value in result if value is not None]
    return [result]
