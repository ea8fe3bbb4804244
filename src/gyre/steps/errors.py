"""The errors of function steps, all under gyre's tree.

::

    GyreError
    ├── ConfigError
    │   ├── StepDefinitionError   a step call that cannot be recorded (bad arguments, names, deps)
    │   └── SchemaConflictError   the cache directory holds a different workflow
    └── StepResultError           get_result for a step that failed, was skipped or never ran
"""

from __future__ import annotations

from ..errors import ConfigError, GyreError

__all__ = ["SchemaConflictError", "StepDefinitionError", "StepResultError"]


class StepDefinitionError(ConfigError):
    """A step call that cannot be recorded: bad arguments, a duplicate name, a foreign dependency."""


class SchemaConflictError(ConfigError):
    """The cache directory was written by a different workflow definition."""


class StepResultError(GyreError):
    """A step has no usable result: it failed, was skipped, or has not run with its current definition."""

    def __init__(self, message: str, *, step: str, status: str) -> None:
        super().__init__(message)
        self.step = step
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (str(self), self.step, self.status))


def _rebuild(message: str, step: str, status: str) -> StepResultError:
    return StepResultError(message, step=step, status=status)
