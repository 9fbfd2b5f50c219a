"""The client commands, the JSON API and the real engine together: the web app under uvicorn (in
the test's event loop, beside the engine's workers on the session's dev server) with the real
`EngineClient`, a real git repository and hooks; the commands run in a thread as a person would
run them. Release, a waiting approval in `status`, a refused approval (exit 1), approve, promote,
the events with the admin as actor, and `audit verify`."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from client_helpers import PIPELINE, gate_seen, outcome, register, run_status, running_engine, wait_for
from workflow_helpers import make_repo

from pipewarden.cli.main import cli
from pipewarden.engine.client import EngineClient
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore
from pipewarden.web.app import create_app

TOKEN = "end-to-end-token"


@dataclass
class Services:
    store: EngineStore
    client: EngineClient
    token: str = TOKEN
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def health(self) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return True

        return probe


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner keeps its own signal handlers
        yield


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


async def pipewarden(url: str, *args: str) -> Ran:
    """`pipewarden ARGS --server URL`, in a thread (the server answers from this event loop)."""
    def run() -> Ran:
        result = CliRunner().invoke(cli, [*args, "--server", url], catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return await asyncio.to_thread(run)


def test_a_release_driven_through_the_cli(temporal_server: DevServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    extra = "    approvals: [{name: qa-lead, type: manual}]\n    promotion: manual\n"
    repo = make_repo(tmp_path, tmp_path / "record.txt", stages=2, beta_extra=extra)
    state = tmp_path / "state"
    monkeypatch.setenv("PIPEWARDEN_TOKEN", TOKEN)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            server = _Server(uvicorn.Config(create_app(Services(store, engine)), lifespan="off", log_level="warning"))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                await wait_for("uvicorn", lambda: server.started, timeout=10)
                await drive(url, store, engine)
            finally:
                server.should_exit = True
                await serving
                sock.close()

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))


async def drive(url: str, store: EngineStore, engine: EngineClient) -> None:
    released = await pipewarden(url, "release", PIPELINE, "--reason", "first release")
    assert released.exit_code == 0 and released.stdout == f"{PIPELINE}-1\n", released.stderr
    execution = released.stdout.strip()
    await wait_for("the approval gate", gate_seen(store, execution, "approval", "approval_missing"))

    status = await pipewarden(url, "status", PIPELINE, "--format", "json")
    beta = json.loads(status.stdout)["stages"][0]
    assert beta["name"] == "beta" and beta["execution"]["id"] == execution
    assert beta["execution"]["status"] == "waiting"
    gates: dict[str, Any] = {g["gate"]: g for g in beta["execution"]["gates"]}
    assert gates["approval"]["result"] == "wait" and gates["approval"]["code"] == "approval_missing"
    assert "approval wait:" in (await pipewarden(url, "status", PIPELINE)).stdout

    refused = await pipewarden(url, "approve", execution, "--stage", "beta", "--approval", "cto")
    assert refused.exit_code == 1 and refused.stderr.startswith("pipewarden: refused:")
    assert len(refused.stderr.splitlines()) == 1
    missing = await pipewarden(url, "approve", f"{PIPELINE}-9", "--stage", "beta")
    assert missing.exit_code == 2 and "404" in missing.stderr

    approved = await pipewarden(url, "approve", execution, "--stage", "beta", "--reason", "looks good")
    assert approved.exit_code == 0 and approved.stdout == f"{execution}: approved beta (qa-lead)\n", approved.stderr
    await wait_for("awaiting_promotion", run_status(store, execution, "awaiting_promotion", "beta"))
    assert f"{execution} awaiting_promotion" in (await pipewarden(url, "status", PIPELINE)).stdout
    promoted = await pipewarden(url, "promote", execution, "--stage", "beta")
    assert promoted.exit_code == 0, promoted.stderr
    assert (await outcome(engine, execution)).status == "succeeded"

    shown = json.loads((await pipewarden(url, "executions", "show", execution, "--format", "json")).stdout)
    assert shown["status"] == "succeeded"
    assert [(s["name"], s["execution"]["status"]) for s in shown["stages"]] == [
        ("beta", "succeeded"), ("prod", "succeeded")]
    events = [json.loads(line) for line in
              (await pipewarden(url, "events", "--execution", execution)).stdout.splitlines()]
    by_people = [(e["type"], e["actor"]) for e in events if e["actor"] != "engine"]
    assert by_people == [("execution_started", "admin"), ("refused", "admin"), ("approved", "admin"),
                         ("promoted", "admin")]
    status = json.loads((await pipewarden(url, "status", PIPELINE, "--format", "json")).stdout)
    hosts = [h for stage in status["stages"] for t in stage["targets"] for h in t["hosts"]]
    assert {(h["artifact"], h["state"]) for h in hosts} == {(shown["artifact"], "ok")}

    def verify() -> Ran:
        result = CliRunner().invoke(cli, ["audit", "verify", "--store", store.url], catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    verified = await asyncio.to_thread(verify)
    assert verified.exit_code == 0 and verified.stdout.startswith("audit log intact:"), verified.stdout
