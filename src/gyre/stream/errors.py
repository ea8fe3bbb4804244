"""The errors a stream raises; all are ``GyreError`` (see :mod:`gyre.stream` for the tree)."""

from __future__ import annotations

from ..errors import GyreError

__all__ = ["StageFailed", "StreamClosed", "StreamEmpty", "StreamError", "StreamFull"]


class StreamError(GyreError):
    """Base class of the errors of a stream; raised as is when the stream itself broke."""


class StreamClosed(StreamError):
    """``put`` after the stop signal or ``close()``; ``get`` when every result has been taken."""


class StreamFull(StreamError, TimeoutError):
    """``put`` waited ``timeout`` seconds and the backlog stayed full."""


class StreamEmpty(StreamError, TimeoutError):
    """``get`` waited ``timeout`` seconds and no result arrived."""


class StageFailed(StreamError):
    """A stage's function raised on a ``fail_fast`` stream; the original exception is the ``__cause__``."""

    def __init__(self, message: str, *, stage: str, index: int) -> None:
        super().__init__(message)
        self.stage = stage
        self.index = index

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_stage_failed, (str(self), self.stage, self.index))


def _rebuild_stage_failed(message: str, stage: str, index: int) -> StageFailed:
    return StageFailed(message, stage=stage, index=index)
