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
from typing import Any, Protocol

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


class DecisionServices(Protocol):
    """The OPA decision API's answers (`engine.decisions.Decisions`): plain JSON values, computed
    by blocking code (the app calls them in a worker thread). Each raises `InvalidValue` for an
    input it cannot read and `engine.decisions.DecisionError` when the server cannot decide now."""

    def release(self, pipeline: str, stage: str, commit: str, *, now: datetime) -> dict[str, Any]:
        """`{"allow", "reason", "gates", ...}`: may an artifact of `commit` enter `stage` now."""

    def check(self, document: object, *, now: datetime) -> dict[str, Any]:
        """`{"findings", "allow", "pipeline"}`: what `check` finds in the pipeline `document`."""


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

    @property
    def decisions(self) -> DecisionServices:
        """The OPA decision API's answers (`/v1/data/...`)."""
