"""The JSON API (web/) over real HTTP: the app under uvicorn on a loopback port, a real SQLite
store, httpx as the client. The human actions go to a recording client of the engine's facade
(tests/live_server.py) that acts on the store as the engine does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from live_server import TOKEN, FakeServices, demo_definition, live_api
from pipewarden.engine import queries
from pipewarden.engine.domain.events import EVENT_KEYS
from pipewarden.engine.domain.gates import WAIT
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.store import EngineStore

T0 = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)
COMMIT1 = "a1b2c3d4e5f6" + "1" * 28
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EngineStore]:
    s = EngineStore.for_state_dir(tmp_path / "state")
    s.set_definition("shop", demo_definition(), commit=COMMIT1, team="checkout", org="acme", now=T0)
    one = s.create_execution("shop", COMMIT1, trigger="poll", now=at(1))
    s.set_execution_artifact(one.id, COMMIT1[:12])
    run = s.start_stage_run(one.id, "beta", now=at(2))
    s.set_stage_run_status(run.id, S.DEPLOYING, now=at(3))
    s.set_stage_run_status(run.id, S.BAKING, now=at(4))
    s.record_gate(run.id, "bake_time", WAIT("baking", "baking 0m of 10m", until=at(604)), now=at(4))
    yield s
    s.close()


@pytest.fixture
def api(store: EngineStore) -> Iterator[tuple[httpx.Client, FakeServices]]:
    with live_api(store, clock=lambda: at(100)) as (url, services), \
            httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        yield client, services


def _base(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def test_health_needs_no_token_and_follows_the_probe(api: tuple[httpx.Client, FakeServices]) -> None:
    client, services = api
    answer = httpx.get(_base(client) + "/api/v1/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    services.healthy = False
    answer = httpx.get(_base(client) + "/api/v1/health")
    assert answer.status_code == 503 and answer.json()["status"] != "ok"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}])
def test_every_other_route_needs_the_token(api: tuple[httpx.Client, FakeServices], headers: dict[str, str]) -> None:
    client, services = api
    base = _base(client) + "/"
    for method, path in [("GET", "api/v1/pipelines"), ("GET", "api/v1/pipelines/shop"),
                         ("GET", "api/v1/executions"), ("GET", "api/v1/executions/shop-1"),
                         ("GET", "api/v1/events"), ("POST", "api/v1/executions"),
                         ("POST", "api/v1/executions/shop-1/approve"), ("POST", "api/v1/pipelines/shop/pause"),
                         ("DELETE", "api/v1/pipelines/shop/override?gate=window&stage=beta")]:
        answer = httpx.request(method, base + path, headers=headers, json={"pipeline": "shop", "stage": "beta"})
        assert answer.status_code == 401, (method, path)
        assert "error" in answer.json() and answer.headers["www-authenticate"] == "Bearer"
    assert services.client.calls == []


def test_read_routes(api: tuple[httpx.Client, FakeServices], store: EngineStore) -> None:
    client, _ = api
    listed = client.get("/api/v1/pipelines")
    assert listed.status_code == 200
    assert listed.json() == queries.pipeline_list(store, now=at(100))
    entry = listed.json()["pipelines"][0]
    assert entry["name"] == entry["pipeline"] == "shop"
    assert {"team", "org", "paused"} <= set(entry)
    assert all({"artifact", "status"} <= set(stage) for stage in entry["stages"])
    assert entry["stages"][0]["status"] == entry["stages"][0]["execution"]["status"]
    status = client.get("/api/v1/pipelines/shop").json()
    assert status == queries.pipeline_status(store, "shop", now=at(100))
    assert status["stages"][0]["execution"]["gates"][0]["until"] == "2026-12-01T15:10:04.000Z"
    assert client.get("/api/v1/executions").json() == queries.executions_list(store)
    assert client.get("/api/v1/executions", params={"pipeline": "cart"}).json() == {"executions": []}
    store.create_execution("shop", COMMIT1, trigger="release", now=at(5))
    assert [e["id"] for e in client.get("/api/v1/executions", params={"limit": 1}).json()["executions"]] == [
        "shop-2"]
    assert client.get("/api/v1/executions/shop-1").json() == queries.execution_show(store, "shop-1")


def test_events_as_json_and_json_lines(api: tuple[httpx.Client, FakeServices], store: EngineStore) -> None:
    client, _ = api
    every = client.get("/api/v1/events").json()
    assert [e["seq"] for e in every] == list(range(1, len(every) + 1))
    assert all(list(e) == list(EVENT_KEYS) for e in every)
    lines = client.get("/api/v1/events", headers={"Accept": "application/x-ndjson"})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in lines.text.splitlines()] == every
    assert client.get("/api/v1/events", params={"execution": "shop-1"}).json() == queries.events(
        store, execution="shop-1")
    assert client.get("/api/v1/events", params={"pipeline": "cart"}).json() == []
    later = client.get("/api/v1/events", params={"since": "2026-12-01T15:00:04+00:00"}).json()
    assert later and all(e["time"] >= "2026-12-01T15:00:04.000Z" for e in later)
    assert [e["seq"] for e in client.get("/api/v1/events", params={"after": 1, "limit": 1}).json()] == [2]


def test_bad_queries_and_unknown_things(api: tuple[httpx.Client, FakeServices]) -> None:
    client, _ = api
    for path, params in [("/api/v1/events", {"since": "yesterday"}), ("/api/v1/executions", {"limit": "0"}),
                         ("/api/v1/executions", {"limit": "many"}), ("/api/v1/events", {"after": "-1"})]:
        answer = client.get(path, params=params)
        assert answer.status_code == 400 and answer.json()["error"], (path, params)
    for path in ["/api/v1/pipelines/nope", "/api/v1/executions/shop-99", "/api/v1/nothing-here"]:
        answer = client.get(path)
        assert answer.status_code == 404 and answer.json()["error"], path
    answer = client.put("/api/v1/pipelines")
    assert answer.status_code == 405 and "error" in answer.json()


def test_release(api: tuple[httpx.Client, FakeServices], store: EngineStore) -> None:
    client, services = api
    answer = client.post("/api/v1/executions", json={"pipeline": "shop", "commit": COMMIT1, "reason": "hotfix"})
    assert answer.status_code == 201
    assert answer.json() == queries.execution_json(store.execution("shop-2"))  # type: ignore[arg-type]
    assert services.client.calls[-1] == ("release", {"pipeline": "shop", "commit": COMMIT1, "actor": "admin",
                                                     "reason": "hotfix"})
    assert client.post("/api/v1/executions", json={"pipeline": "shop"}).json()["id"] == "shop-3"
    assert services.client.calls[-1][1]["commit"] is None
    assert client.post("/api/v1/executions", json={"pipeline": "nope"}).status_code == 404
    # A commit that is not a full 40-hex name is the store's InvalidValue: 400.
    assert client.post("/api/v1/executions", json={"pipeline": "shop", "commit": "abc"}).status_code == 400
    for body in [b"{", b"[]", b'{"commit": "x"}', b'{"pipeline": 7}']:
        answer = client.post("/api/v1/executions", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"], body


@pytest.mark.parametrize(("action", "body", "expected"), [
    ("approve", {"stage": "prod-canary", "approval": "qa", "reason": "looks good"},
     {"execution": "shop-1", "stage": "prod-canary", "approval": "qa", "actor": "admin", "reason": "looks good"}),
    ("approve", {"stage": "prod-canary"},
     {"execution": "shop-1", "stage": "prod-canary", "approval": None, "actor": "admin", "reason": None}),
    ("promote", {"stage": "beta"}, {"execution": "shop-1", "stage": "beta", "actor": "admin", "reason": None}),
    ("reject", {"stage": "beta", "reason": "no"},
     {"execution": "shop-1", "stage": "beta", "actor": "admin", "reason": "no"}),
    ("retry", {"stage": "beta"}, {"execution": "shop-1", "stage": "beta", "actor": "admin", "reason": None}),
    ("cancel", {}, {"execution": "shop-1", "actor": "admin", "reason": None}),
    ("cancel", {"reason": "wrong commit"}, {"execution": "shop-1", "actor": "admin", "reason": "wrong commit"}),
])
def test_execution_actions(api: tuple[httpx.Client, FakeServices], action: str, body: dict[str, str],
                           expected: dict[str, object]) -> None:
    client, services = api
    answer = client.post(f"/api/v1/executions/shop-1/{action}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] == action and answer.json()["execution"] == "shop-1"
    if action == "approve":
        assert answer.json()["approval"] == "qa"  # the approval the engine recorded
    assert services.client.calls == [(action, expected)]


@pytest.mark.parametrize("action", ["approve", "promote", "reject", "retry", "cancel"])
def test_execution_action_errors(api: tuple[httpx.Client, FakeServices], store: EngineStore, action: str) -> None:
    client, _ = api
    if action != "cancel":
        assert client.post(f"/api/v1/executions/shop-1/{action}", json={}).status_code == 400  # no stage
        assert client.post(f"/api/v1/executions/shop-1/{action}", json={"stage": 3}).status_code == 400
        refused = client.post(f"/api/v1/executions/shop-1/{action}", json={"stage": "closed"})
        assert refused.status_code == 409 and "refused" in refused.json()["error"]
        assert store.events(types=["refused"])[-1].data["action"] == action
        assert client.post(f"/api/v1/executions/shop-1/{action}", json={"stage": "bad value"}).status_code == 400
    assert client.post(f"/api/v1/executions/shop-404/{action}", json={"stage": "beta"}).status_code == 404


def test_pause_resume(api: tuple[httpx.Client, FakeServices], store: EngineStore) -> None:
    client, services = api
    answer = client.post("/api/v1/pipelines/shop/pause", json={"reason": "freeze"})
    assert answer.status_code == 200 and answer.json() == {"action": "pause", "pipeline": "shop"}
    assert client.get("/api/v1/pipelines/shop").json()["paused"] is True
    again = client.post("/api/v1/pipelines/shop/pause")  # no body at all is fine too
    assert again.status_code == 409 and "already paused" in again.json()["error"]
    assert client.post("/api/v1/pipelines/shop/resume").status_code == 200
    assert store.pipeline("shop").paused is False  # type: ignore[union-attr]
    assert [c[0] for c in services.client.calls] == ["pause", "pause", "resume"]
    assert services.client.calls[0][1] == {"pipeline": "shop", "actor": "admin", "reason": "freeze"}
    assert [e.actor for e in store.events(types=["paused", "resumed"])] == ["admin", "admin"]


def test_rollback(api: tuple[httpx.Client, FakeServices]) -> None:
    client, services = api
    answer = client.post("/api/v1/pipelines/shop/rollback", json={"stage": "beta", "to": "0123456789ab"})
    assert answer.status_code == 200 and answer.json()["pause"] is True
    assert answer.json()["artifact"] == "a1b2c3d4e5f6"
    assert client.post("/api/v1/pipelines/shop/rollback",
                       json={"stage": "beta", "pause": False, "reason": "bad deploy"}).status_code == 200
    assert services.client.calls == [
        ("rollback", {"pipeline": "shop", "stage": "beta", "to": "0123456789ab", "pause": True, "actor": "admin",
                      "reason": None}),
        ("rollback", {"pipeline": "shop", "stage": "beta", "to": None, "pause": False, "actor": "admin",
                      "reason": "bad deploy"})]
    assert client.post("/api/v1/pipelines/shop/rollback", json={"stage": "beta", "pause": "no"}).status_code == 400
    assert client.post("/api/v1/pipelines/shop/rollback", json={}).status_code == 400
    assert client.post("/api/v1/pipelines/shop/rollback", json={"stage": "closed"}).status_code == 409


def test_override_and_revoke(api: tuple[httpx.Client, FakeServices], store: EngineStore) -> None:
    client, services = api
    answer = client.post("/api/v1/pipelines/shop/override",
                         json={"gate": "window", "stage": "prod-canary", "reason": "hotfix", "ttl": "90m"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["override"] == {"gate": "window", "actor": "admin", "reason": "hotfix",
                                         "expires": "2026-12-01T16:31:40.000Z"}
    assert services.client.calls[-1] == ("override", {"pipeline": "shop", "stage": "prod-canary", "gate": "window",
                                                      "ttl_seconds": 5400, "actor": "admin", "reason": "hotfix"})
    status = client.get("/api/v1/pipelines/shop").json()
    assert status["stages"][1]["overrides"] == [answer.json()["override"]]
    # Default ttl 1h; a number is seconds.
    client.post("/api/v1/pipelines/shop/override", json={"gate": "alarms", "stage": "beta", "reason": "noisy"})
    assert services.client.calls[-1][1]["ttl_seconds"] == 3600
    client.post("/api/v1/pipelines/shop/override", json={"gate": "alarms", "stage": "beta", "reason": "x", "ttl": 60})
    assert services.client.calls[-1][1]["ttl_seconds"] == 60
    for body in [{"gate": "window", "stage": "beta"}, {"gate": "window", "stage": "beta", "reason": " "},
                 {"gate": "window", "stage": "beta", "reason": "r", "ttl": "an hour"},
                 {"gate": "window", "stage": "beta", "reason": "r", "ttl": "0s"},
                 {"gate": "window", "stage": "beta", "reason": "r", "ttl": True},
                 {"stage": "beta", "reason": "r"}]:
        answer = client.post("/api/v1/pipelines/shop/override", json=body)
        assert answer.status_code == 400 and answer.json()["error"], body
    refused = client.post("/api/v1/pipelines/shop/override", json={"gate": "policy", "stage": "beta", "reason": "r"})
    assert refused.status_code == 409 and "cannot be overridden" in refused.json()["error"]

    revoked = client.delete("/api/v1/pipelines/shop/override", params={"gate": "window", "stage": "prod-canary"})
    assert revoked.status_code == 200
    assert services.client.calls[-1] == ("revoke_override", {"pipeline": "shop", "stage": "prod-canary",
                                                             "gate": "window", "actor": "admin", "reason": None})
    assert client.get("/api/v1/pipelines/shop").json()["stages"][1]["overrides"] == []
    again = client.delete("/api/v1/pipelines/shop/override", params={"gate": "window", "stage": "prod-canary"})
    assert again.status_code == 409
    assert client.delete("/api/v1/pipelines/shop/override", params={"gate": "window"}).status_code == 400
    assert [e.type for e in store.events(types=["override_granted", "override_revoked"])] == [
        "override_granted", "override_granted", "override_granted", "override_revoked"]


def test_a_large_body_is_refused(api: tuple[httpx.Client, FakeServices]) -> None:
    client, services = api
    answer = client.post("/api/v1/executions", content=b'{"pipeline": "' + b"x" * 100_000 + b'"}')
    assert answer.status_code == 413 and services.client.calls == []
