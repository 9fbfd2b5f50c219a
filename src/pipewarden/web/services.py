"""What the web app needs from a running server, as protocols.

`engine.server.Services` (a dataclass) and `engine.client.EngineClient` satisfy these
structurally; the app is typed against the protocols so that it needs nothing else of the server
(a test can hand it a real store and a small client of its own).

Every member is read-only (a property), so a frozen dataclass satisfies it as well as a plain one.
Parameters carry no defaults here: the app always passes every argument, and an implementation
with defaults (or wider types) still matches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from pipewarden.engine.store import EngineStore, ExecutionRecord


class ActionClient(Protocol):
    """The human actions of engine.md, as `engine.client.EngineClient` offers them. Each raises
    `Refused` (the action does not apply now; it wrote the `refused` event), `NotFound` or
    `InvalidValue`."""

    async def release(self, pipeline: str, commit: str | None, *, actor: str,
                      reason: str | None) -> ExecutionRecord: ...

    async def approve(self, execution: str, stage: str, approval: str | None, *, actor: str,
                      reason: str | None) -> object: ...

    async def promote(self, execution: str, stage: str, *, actor: str, reason: str | None) -> object: ...

    async def reject(self, execution: str, stage: str, *, actor: str, reason: str | None) -> object: ...

    async def cancel(self, execution: str, *, actor: str, reason: str | None) -> object: ...

    async def retry(self, execution: str, stage: str, *, actor: str, reason: str | None) -> object: ...

    async def pause(self, pipeline: str, *, actor: str, reason: str | None) -> object: ...

    async def resume(self, pipeline: str, *, actor: str, reason: str | None) -> object: ...

    async def rollback(self, pipeline: str, stage: str, to: str | None, pause: bool, *, actor: str,
                       reason: str | None) -> object: ...

    async def override(self, pipeline: str, stage: str, gate: str, ttl_seconds: int, *, actor: str,
                       reason: str) -> object: ...

    async def revoke_override(self, pipeline: str, stage: str, gate: str, *, actor: str,
                              reason: str | None) -> object: ...


class WebServices(Protocol):
    """The parts of `engine.server.Services` the web app uses."""

    @property
    def store(self) -> EngineStore: ...

    @property
    def client(self) -> ActionClient: ...

    @property
    def token(self) -> str:
        """The admin token: a request bearing it acts as `admin`."""

    @property
    def health(self) -> Callable[[], Awaitable[bool]]:
        """True once the API, a worker and Temporal answer (`GET /api/v1/health`)."""

    @property
    def clock(self) -> Callable[[], datetime]:
        """Now, as an aware UTC datetime (status reads which overrides are active at it)."""
