"""The release engine's client commands against a real server: the web app under uvicorn on a
loopback port over a real SQLite store (tests/live_server.py), found through the state dir's
server.json or --server / $PIPEWARDEN_SERVER, with the admin token of the state dir. And
`audit verify` on the store itself."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import CliResult, run_cli
from live_server import TOKEN, FakeServices, demo_definition, live_api
from pipewarden.cli import remote
from pipewarden.engine import queries
from pipewarden.engine.devserver import free_port
from pipewarden.engine.domain import overrides
from pipewarden.engine.domain.events import EVENT_KEYS
from pipewarden.engine.domain.gates import PASS, WAIT
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.statedir import ServerInfo, write_server_info
from pipewarden.engine.store import EngineStore

COMMIT1 = "a1b2c3d4e5f6" + "1" * 28
COMMIT2 = "9f8e7d6c5b4a" + "2" * 28


@dataclass
class Engine:
    url: str
    state: Path
    store: EngineStore
    services: FakeServices


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's state dir or the caller's server and token."""
    monkeypatch.delenv(remote.SERVER_ENV, raising=False)
    monkeypatch.delenv(remote.TOKEN_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def fill(store: EngineStore) -> None:
    """shop-1 bakes in beta (until +10m); shop-2 waits at beta's entry behind it."""
    now = datetime.now(UTC)
    store.set_definition("shop", demo_definition(), commit=COMMIT1, team="checkout", org="acme", now=now)
    one = store.create_execution("shop", COMMIT1, trigger="poll", now=now)
    store.set_execution_artifact(one.id, COMMIT1[:12])
    run = store.start_stage_run(one.id, "beta", now=now)
    store.record_gate(run.id, "policy", PASS("no enforce finding"), now=now)
    store.set_stage_run_status(run.id, S.DEPLOYING, now=now)
    store.set_host_state("shop", "beta", "beta-1", "127.0.0.1:9101", state="ok", artifact=COMMIT1[:12],
                         execution=one.id, now=now)
    store.set_stage_run_status(run.id, S.BAKING, now=now)
    store.record_gate(run.id, "bake_time", WAIT("baking", "baking 0m of 10m", until=now + timedelta(minutes=10)),
                      now=now)
    two = store.create_execution("shop", COMMIT2, trigger="poll", now=now)
    waiting = store.start_stage_run(two.id, "beta", now=now)
    store.record_gate(waiting.id, "stage_busy", WAIT("stage_busy", "shop-1 is baking in beta"), now=now)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    state = tmp_path / "state"
    store = EngineStore.for_state_dir(state)
    fill(store)
    with live_api(store) as (url, services):
        (state / "admin-token").write_text(TOKEN + "\n")
        os.chmod(state / "admin-token", 0o600)
        write_server_info(state, ServerInfo(url, os.getpid(), "127.0.0.1:7233"))
        yield Engine(url, state, store, services)
    store.close()


def cli(engine: Engine, *args: str) -> CliResult:
    return run_cli(*args, "--state-dir", str(engine.state))


def one_line_error(result: CliResult, code: int, *words: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pipewarden: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# ---------------------------------------------------------------- reads


def test_status_through_server_json_and_the_state_dirs_token(engine: Engine) -> None:
    result = cli(engine, "status", "shop", "--format", "json")
    assert result.exit_code == 0, result.stderr
    status = result.json()
    assert status["pipeline"] == "shop" and [s["name"] for s in status["stages"]] == ["beta", "prod-canary"]
    assert status == queries.pipeline_status(engine.store, "shop", now=datetime.now(UTC))
    every = cli(engine, "status", "--format", "json")
    assert [p["pipeline"] for p in every.json()["pipelines"]] == ["shop"]


def test_status_text(engine: Engine) -> None:
    engine.store.put_override(overrides.grant("window", pipeline="shop", stage="prod-canary", actor="dana",
                                              reason="hotfix", now=datetime.now(UTC)))
    result = cli(engine, "status", "shop")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith("shop (team checkout, org acme)")
    for expected in ["beta", "prod-canary", "127.0.0.1:9101 a1b2c3d4e5f6", "127.0.0.1:9301 -", "shop-1 baking",
                     "bake_time wait: baking 0m of 10m (until 20", "in 9m", "shop-2 waiting",
                     "stage_busy wait: shop-1 is baking in beta", "window until", "by dana: hotfix"]:
        assert expected in text, expected
    assert "policy" not in text  # passed at the entry: not what the run waits on
    assert "PAUSED" not in text
    assert cli(engine, "status").stdout == text  # every pipeline: the one there is


def test_executions_list_and_show(engine: Engine) -> None:
    listed = cli(engine, "executions", "list", "--format", "json")
    assert listed.exit_code == 0 and listed.json() == queries.executions_list(engine.store)
    assert [e["id"] for e in cli(engine, "executions", "list", "--limit", "1", "--format", "json").json()[
        "executions"]] == ["shop-2"]
    assert cli(engine, "executions", "list", "--pipeline", "cart", "--format", "json").json() == {"executions": []}
    text = cli(engine, "executions", "list").stdout
    assert "shop-2" in text.splitlines()[2] and "shop-1" in text.splitlines()[3] and "running" in text
    shown = cli(engine, "executions", "show", "shop-1", "--format", "json")
    assert shown.exit_code == 0 and shown.json() == queries.execution_show(engine.store, "shop-1")
    text = cli(engine, "executions", "show", "shop-1").stdout
    for expected in ["shop-1  running", "baking", "pending", "policy pass", "bake_time wait", "execution_started",
                     "events:"]:
        assert expected in text, expected
    one_line_error(cli(engine, "executions", "show", "shop-99"), 2, "no execution", "404")
    one_line_error(cli(engine, "status", "nope"), 2, "no pipeline", "404")


def test_events(engine: Engine) -> None:
    result = cli(engine, "events")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert all(list(e) == list(EVENT_KEYS) for e in lines)
    assert lines == queries.events(engine.store)
    only = [json.loads(line) for line in cli(engine, "events", "--execution", "shop-2").stdout.splitlines()]
    assert {e["execution"] for e in only} == {"shop-2"}
    assert cli(engine, "events", "--pipeline", "cart").stdout == ""
    assert cli(engine, "events", "--since", "2999-01-01T00:00:00Z").stdout == ""
    text = cli(engine, "events", "--format", "text").stdout.splitlines()
    assert len(text) == len(lines) and "execution_started" in text[0] and "shop/shop-1" in text[0]
    assert "trigger=poll" in text[0] and "inputs" not in "".join(text)
    one_line_error(cli(engine, "events", "--since", "last tuesday"), 2, "bad time", "400")


# ---------------------------------------------------------------- actions


def test_release(engine: Engine) -> None:
    result = cli(engine, "release", "shop", "--commit", COMMIT1, "--reason", "hotfix")
    assert result.exit_code == 0 and result.stdout == "shop-3\n"
    assert engine.services.client.calls[-1] == ("release", {"pipeline": "shop", "commit": COMMIT1, "actor": "admin",
                                                            "reason": "hotfix"})
    assert cli(engine, "release", "shop").stdout == "shop-4\n"
    one_line_error(cli(engine, "release", "nope"), 2, "no pipeline", "404")
    one_line_error(cli(engine, "release", "shop", "--commit", "xyz"), 2, "bad commit", "400")


@pytest.mark.parametrize(("args", "call", "printed"), [
    (["approve", "shop-1", "--stage", "prod-canary", "--approval", "qa", "--reason", "ok"],
     ("approve", {"execution": "shop-1", "stage": "prod-canary", "approval": "qa", "actor": "admin", "reason": "ok"}),
     "shop-1: approved prod-canary (qa)"),
    (["approve", "shop-1", "--stage", "prod-canary"],
     ("approve", {"execution": "shop-1", "stage": "prod-canary", "approval": None, "actor": "admin", "reason": None}),
     "shop-1: approved prod-canary (qa)"),
    (["promote", "shop-1", "--stage", "beta"],
     ("promote", {"execution": "shop-1", "stage": "beta", "actor": "admin", "reason": None}),
     "shop-1: promoted at beta"),
    (["reject", "shop-2", "--stage", "beta", "--reason", "bad build"],
     ("reject", {"execution": "shop-2", "stage": "beta", "actor": "admin", "reason": "bad build"}),
     "shop-2: rejected at beta"),
    (["retry", "shop-1", "--stage", "beta"],
     ("retry", {"execution": "shop-1", "stage": "beta", "actor": "admin", "reason": None}), "shop-1: retrying beta"),
    (["cancel", "shop-2"], ("cancel", {"execution": "shop-2", "actor": "admin", "reason": None}), "shop-2: cancelling"),
    (["rollback", "shop", "--stage", "beta"],
     ("rollback", {"pipeline": "shop", "stage": "beta", "to": None, "pause": True, "actor": "admin", "reason": None}),
     "shop: rolling back beta from a1b2c3d4e5f6 to the last good artifact; pipeline paused"),
    (["rollback", "shop", "--stage", "beta", "--to", "0123456789ab", "--no-pause", "--reason", "r"],
     ("rollback", {"pipeline": "shop", "stage": "beta", "to": "0123456789ab", "pause": False, "actor": "admin",
                   "reason": "r"}),
     "shop: rolling back beta from a1b2c3d4e5f6 to 0123456789ab"),
])
def test_actions(engine: Engine, args: list[str], call: tuple[str, dict[str, object]], printed: str) -> None:
    result = cli(engine, *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == printed + "\n"
    assert engine.services.client.calls == [call]


@pytest.mark.parametrize("args", [
    ["approve", "shop-1", "--stage", "closed"], ["promote", "shop-1", "--stage", "closed"],
    ["reject", "shop-1", "--stage", "closed"], ["retry", "shop-1", "--stage", "closed"],
    ["rollback", "shop", "--stage", "closed"],
])
def test_refused_actions_exit_1(engine: Engine, args: list[str]) -> None:
    one_line_error(cli(engine, *args), 1, "pipewarden: refused:", "(HTTP 409)")
    assert engine.store.events(types=["refused"])[-1].actor == "admin"


def test_unknown_execution_and_bad_value_exit_2(engine: Engine) -> None:
    one_line_error(cli(engine, "cancel", "shop-404"), 2, "no execution", "404")
    one_line_error(cli(engine, "retry", "shop-1", "--stage", "bad value"), 2, "bad stage", "400")
    # A missing required option is click's usage error: one line, exit 2.
    one_line_error(cli(engine, "approve", "shop-1"), 2, "--stage")


def test_pause_and_resume(engine: Engine) -> None:
    assert cli(engine, "pause", "shop", "--reason", "freeze").stdout == "shop: paused\n"
    assert engine.store.pipeline("shop").paused  # type: ignore[union-attr]
    assert "PAUSED" in cli(engine, "status", "shop").stdout
    one_line_error(cli(engine, "pause", "shop"), 1, "already paused", "409")
    assert cli(engine, "resume", "shop").exit_code == 0
    one_line_error(cli(engine, "resume", "shop"), 1, "not paused")
    assert [(e.type, e.actor, e.data["reason"]) for e in engine.store.events(types=["paused", "resumed"])] == [
        ("paused", "admin", "freeze"), ("resumed", "admin", None)]


def test_override(engine: Engine) -> None:
    result = cli(engine, "override", "window", "--pipeline", "shop", "--stage", "prod-canary", "--reason", "hotfix",
                 "--ttl", "90m")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("shop prod-canary: window overridden until 20")
    assert engine.services.client.calls[-1][1]["ttl_seconds"] == 5400
    active = cli(engine, "status", "shop", "--format", "json").json()["stages"][1]["overrides"]
    assert [(o["gate"], o["actor"], o["reason"]) for o in active] == [("window", "admin", "hotfix")]
    one_line_error(cli(engine, "override", "window", "--pipeline", "shop", "--stage", "beta"), 2, "--reason")
    one_line_error(cli(engine, "override", "window", "--pipeline", "shop", "--stage", "beta", "--reason", "r",
                       "--ttl", "soon"), 2, "--ttl")
    one_line_error(cli(engine, "override", "policy", "--pipeline", "shop", "--stage", "beta", "--reason", "r"), 1,
                   "cannot be overridden")
    revoked = cli(engine, "override", "window", "--pipeline", "shop", "--stage", "prod-canary", "--revoke")
    assert revoked.exit_code == 0 and revoked.stdout == "shop prod-canary: override of window revoked\n"
    one_line_error(cli(engine, "override", "window", "--pipeline", "shop", "--stage", "prod-canary", "--revoke"), 1,
                   "no active override")
    assert [c[0] for c in engine.services.client.calls] == ["override", "override", "revoke_override",
                                                            "revoke_override"]


# ---------------------------------------------------------------- finding the server and the token


def test_server_option_and_environment(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "empty-state"
    # --server, with the token from the environment (a state dir without admin-token).
    monkeypatch.setenv(remote.TOKEN_ENV, TOKEN)
    result = run_cli("status", "shop", "--server", engine.url, "--state-dir", str(elsewhere), "--format", "json")
    assert result.exit_code == 0 and result.json()["pipeline"] == "shop"
    # $PIPEWARDEN_SERVER (the default state dir has no server.json).
    monkeypatch.setenv(remote.SERVER_ENV, engine.url.replace("127.0.0.1", "localhost"))
    assert run_cli("executions", "list", "--format", "json").exit_code == 0
    # Without any token: 401, exit 2, one line saying what to do.
    monkeypatch.delenv(remote.TOKEN_ENV)
    one_line_error(run_cli("status", "--server", engine.url, "--state-dir", str(elsewhere)), 2, "401",
                   remote.TOKEN_ENV)
    # A wrong token in the environment wins over the state dir's.
    monkeypatch.setenv(remote.TOKEN_ENV, "wrong")
    one_line_error(cli(engine, "status"), 2, "bad credentials", "401")


def test_default_state_dir_is_xdg(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(engine.state.parent))
    engine.state.rename(engine.state.parent / "pipewarden")
    result = run_cli("status", "shop", "--format", "json")
    assert result.exit_code == 0, result.stderr


def test_the_state_dirs_token_goes_only_to_loopback(tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("secret\n")
    for url in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.1.2.3"]:
        assert remote.resolve(url, str(tmp_path), environ={}).token == "secret", url
    for url in ["http://10.0.0.5:8080", "https://engine.example.com", "http://localhost.example.com"]:
        assert remote.resolve(url, str(tmp_path), environ={}).token is None, url
        # A token the user gives is theirs to send.
        assert remote.resolve(url, str(tmp_path), environ={remote.TOKEN_ENV: "mine"}).token == "mine"
    write_server_info(tmp_path, ServerInfo("http://127.0.0.1:9999/", 1, "127.0.0.1:7233"))
    found = remote.resolve(None, str(tmp_path), environ={})
    assert found == remote.Target("http://127.0.0.1:9999", "secret")


def test_exit_codes() -> None:
    assert [remote.exit_code_of(s) for s in (200, 201, 400, 401, 403, 404, 409, 413, 500, 503)] == [
        0, 0, 2, 2, 1, 2, 1, 2, 2, 2]


def test_unreachable_server_is_one_line_exit_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in [["status"], ["events"], ["release", "shop"], ["pause", "shop"],
                 ["override", "window", "--pipeline", "shop", "--stage", "beta", "--revoke"]]:
        one_line_error(run_cli(*args, "--server", url), 2, "cannot reach the server", url)


def test_no_server_to_talk_to(tmp_path: Path) -> None:
    one_line_error(run_cli("status", "--state-dir", str(tmp_path)), 2, "no server", "server.json")
    one_line_error(run_cli("status", "--server", "ftp://somewhere"), 2, "bad server URL")


# ---------------------------------------------------------------- audit verify


def test_audit_verify(engine: Engine, tmp_path: Path) -> None:
    result = run_cli("audit", "verify", "--state-dir", str(engine.state))
    head = engine.store.head()
    assert result.exit_code == 0 and result.stdout == f"audit log intact: {head.seq} events, head {head.hash}\n"
    url = f"sqlite:///{engine.state / 'engine.db'}"
    assert run_cli("audit", "verify", "--store", url).exit_code == 0
    with sqlite3.connect(engine.state / "engine.db") as db:
        db.execute("UPDATE events SET actor = 'mallory' WHERE seq = 3")
    tampered = run_cli("audit", "verify", "--state-dir", str(engine.state))
    assert tampered.exit_code == 1
    assert tampered.stdout == "audit log does not verify: event 3: hash does not match its content\n"


def test_audit_verify_finds_removed_last_events(engine: Engine) -> None:
    last = engine.store.head().seq
    with sqlite3.connect(engine.state / "engine.db") as db:
        db.execute("DELETE FROM events WHERE seq = ?", (last,))
    result = run_cli("audit", "verify", "--state-dir", str(engine.state))
    assert result.exit_code == 1 and f"event {last}:" in result.stdout and "missing" in result.stdout


def test_audit_verify_usage(tmp_path: Path) -> None:
    one_line_error(run_cli("audit", "verify", "--state-dir", str(tmp_path)), 2, "no store at")
    assert not (tmp_path / "engine.db").exists()  # looking did not create one
    one_line_error(run_cli("audit", "verify", "--state-dir", str(tmp_path), "--store", "sqlite:///x.db"), 2,
                   "not both")
    one_line_error(run_cli("audit", "verify", "--store", "not a url"), 2, "not a database URL")
    # The default state dir ($XDG_STATE_HOME/pipewarden) has no store either.
    one_line_error(run_cli("audit", "verify"), 2, "no store at")
