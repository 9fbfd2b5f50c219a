"""A real HTTP server for the API and client tests: the web app under uvicorn in a background
thread, on a free loopback port, over a real store; and a small engine client of our own facade
(the human actions) that records its calls and acts on the store the way the engine does.

Imported by tests/web/ and tests/test_engine_cli.py (both have tests/ on sys.path).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn

from pipewarden.engine.domain import overrides
from pipewarden.engine.domain.errors import InvalidValue, NotFound, Refused
from pipewarden.engine.store import EngineStore, ExecutionRecord
from pipewarden.web.app import create_app

TOKEN = "test-admin-token"
HEAD = "c0ffee000000" + "4" * 28


class RecordingClient:
    """The engine client's human actions (engine/client.py's EngineClient signatures). Pipeline
    actions (release, pause, resume, override, revoke) act on the real store as the engine does;
    execution actions are recorded. Stage `closed` is refused, execution ids ending in `-404`
    are unknown, and stage `bad value` is an invalid value."""

    def __init__(self, store: EngineStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _record(self, action: str, **arguments: Any) -> None:
        self.calls.append((action, arguments))
        execution = arguments.get("execution")
        stage = arguments.get("stage")
        if isinstance(execution, str) and execution.endswith("-404"):
            raise NotFound(f"no execution {execution!r}")
        if stage == "bad value":
            raise InvalidValue(f"bad stage name {stage!r}")
        if stage == "closed":
            self.store.refuse(action, f"stage {stage} is not waiting for that", actor=arguments["actor"],
                              now=self.clock(), execution=execution, stage=stage)
            raise Refused(action, f"stage {stage} is not waiting for that")

    async def release(self, pipeline: str, commit: str | None = None, *, actor: str,
                      reason: str | None = None) -> ExecutionRecord:
        self._record("release", pipeline=pipeline, commit=commit, actor=actor, reason=reason)
        if self.store.pipeline(pipeline) is None:
            raise NotFound(f"no pipeline {pipeline!r}")
        return self.store.create_execution(pipeline, commit or HEAD, trigger="release", now=self.clock(), actor=actor)

    async def approve(self, execution: str, stage: str, approval: str | None = None, *, actor: str,
                      reason: str | None = None) -> str:
        self._record("approve", execution=execution, stage=stage, approval=approval, actor=actor, reason=reason)
        return approval or "qa"

    async def promote(self, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
        self._record("promote", execution=execution, stage=stage, actor=actor, reason=reason)

    async def reject(self, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
        self._record("reject", execution=execution, stage=stage, actor=actor, reason=reason)

    async def cancel(self, execution: str, *, actor: str, reason: str | None = None) -> None:
        self._record("cancel", execution=execution, actor=actor, reason=reason)

    async def retry(self, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
        self._record("retry", execution=execution, stage=stage, actor=actor, reason=reason)

    async def pause(self, pipeline: str, *, actor: str, reason: str | None = None) -> None:
        self._record("pause", pipeline=pipeline, actor=actor, reason=reason)
        self.store.set_paused(pipeline, True, actor=actor, now=self.clock(), reason=reason)

    async def resume(self, pipeline: str, *, actor: str, reason: str | None = None) -> None:
        self._record("resume", pipeline=pipeline, actor=actor, reason=reason)
        self.store.set_paused(pipeline, False, actor=actor, now=self.clock(), reason=reason)

    async def rollback(self, pipeline: str, stage: str, to: str | None = None, pause: bool = True, *, actor: str,
                       reason: str | None = None) -> str:
        self._record("rollback", pipeline=pipeline, stage=stage, to=to, pause=pause, actor=actor, reason=reason)
        return "a1b2c3d4e5f6"

    async def override(self, pipeline: str, stage: str, gate: str, ttl_seconds: int = 3600, *, actor: str,
                       reason: str) -> None:
        self._record("override", pipeline=pipeline, stage=stage, gate=gate, ttl_seconds=ttl_seconds, actor=actor,
                     reason=reason)
        try:
            granted = overrides.grant(gate, pipeline=pipeline, stage=stage, actor=actor, reason=reason,
                                      now=self.clock(), ttl_seconds=ttl_seconds)
        except Refused as refused:
            self.store.refuse("override", refused.reason, actor=actor, now=self.clock(), pipeline=pipeline,
                              stage=stage)
            raise
        self.store.put_override(granted)

    async def revoke_override(self, pipeline: str, stage: str, gate: str, *, actor: str,
                              reason: str | None = None) -> None:
        self._record("revoke_override", pipeline=pipeline, stage=stage, gate=gate, actor=actor, reason=reason)
        self.store.revoke_override(pipeline, stage, gate, actor=actor, now=self.clock())


def demo_definition(name: str = "shop") -> dict[str, Any]:
    """A loader's dict of a valid pipeline: `beta` (one host) and `prod-canary` (two hosts)."""
    hooks = {"start": "./deploy/start.sh", "validate": "./deploy/validate.sh"}
    return {
        "apiVersion": "pipewarden/v1", "kind": "Pipeline",
        "metadata": {"name": name, "team": "checkout"},
        "build": {"commands": ["make build"]},
        "stages": [
            {"name": "beta", "type": "preprod", "targets": [{"name": "beta-1", "hosts": ["127.0.0.1:9101"]}],
             "deploy": {"hooks": hooks}},
            {"name": "prod-canary", "type": "prod", "canary": True,
             "targets": [{"name": "cell-1", "hosts": ["127.0.0.1:9301", "127.0.0.1:9302"]}],
             "deploy": {"hooks": hooks}, "bake": {"duration": "60m"}, "approvals": [{"name": "qa"}]},
        ],
    }


@dataclass
class FakeServices:
    """What `engine.server.Services` gives the web app, over a real store."""

    store: EngineStore
    client: RecordingClient
    token: str = TOKEN
    healthy: bool = True
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def health(self) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return self.healthy

        return probe


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` under uvicorn on a free 127.0.0.1 port in a background thread; yields the base
    URL and stops the server (and joins its thread) on the way out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def live_api(store: EngineStore, clock: Callable[[], datetime] | None = None) -> Iterator[tuple[str, FakeServices]]:
    """The real web app over `store`, served; yields (base URL, services)."""
    now = clock or (lambda: datetime.now(UTC))
    services = FakeServices(store, RecordingClient(store, now), clock=now)
    with serving(create_app(services)) as url:
        yield url, services
