"""Typed errors of the engine's domain.

`Refused` is an action that does not apply now (engine.md: exit 1 and a `refused` event);
`IllegalTransition` and `InvalidEvent` are bugs in the caller (a workflow asked for a move the
transition table forbids, or built an event that does not match engine.md's table), never user
errors; `InvalidValue` is a malformed id, time or name coming from outside.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of the engine's domain errors."""


class IllegalTransition(EngineError):
    """A status change the transition table does not allow."""

    def __init__(self, kind: str, current: str, new: str) -> None:
        super().__init__(f"illegal {kind} status change: {current} -> {new}")
        self.kind = kind
        self.current = current
        self.new = new

    def __reduce__(self) -> tuple[type[IllegalTransition], tuple[str, str, str]]:
        # Raised in the store's writer process and sent back (store/writer.py): rebuilt from its fields.
        return IllegalTransition, (self.kind, self.current, self.new)


class InvalidEvent(EngineError):
    """An audit event whose type, fields or `data` keys do not match engine.md's table."""


class InvalidValue(EngineError, ValueError):
    """A malformed id, time, commit or name."""


class Refused(EngineError):
    """A human action that does not apply now (engine.md: exit 1, a `refused` event)."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action} refused: {reason}")
        self.action = action
        self.reason = reason

    def __reduce__(self) -> tuple[type[Refused], tuple[str, str]]:
        return Refused, (self.action, self.reason)


class NotFound(EngineError):
    """An execution, pipeline, stage or artifact that does not exist (the API answers 404)."""
