"""Streaming stages: items flow through linked stages while the stream is still being fed.

::

    parse = Stage(parse_event, workers=2)
    parse.link(Stage(reconstruct, workers=2, ordered=False)).link(Stage(to_bin))
    with Stream(parse, cluster="local", n_procs=2) as stream:
        for result in stream.map(events):
            ...

A :class:`Stage` wraps a function with a worker count and an ordered flag; stages link in
series (``a.link(b)``) and fork (``a.link(b); a.link(c)``). A :class:`Stream` accepts items
with ``put`` while earlier ones are processing, delivers :class:`StreamResult` objects
(saying which leaf stage they came from, or which stage failed on them) and bounds the
items in flight by its backlog.

Errors::

    GyreError
    └── StreamError        the stream itself broke (e.g. its scheduler went away)
        ├── StreamClosed   put after the stop signal or close(); get when all is taken
        ├── StreamFull     put timed out on a full backlog (also a TimeoutError)
        ├── StreamEmpty    get timed out with no result (also a TimeoutError)
        └── StageFailed    a stage raised on a fail_fast stream (original as __cause__)

Invalid stages or links raise :class:`gyre.errors.ConfigError`.
"""

from __future__ import annotations

from .errors import StageFailed, StreamClosed, StreamEmpty, StreamError, StreamFull
from .flow import StreamResult
from .stage import Stage
from .stream import Stream

__all__ = [
    "Stage",
    "StageFailed",
    "Stream",
    "StreamClosed",
    "StreamEmpty",
    "StreamError",
    "StreamFull",
    "StreamResult",
]
