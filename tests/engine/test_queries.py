"""The read model (engine/queries.py) over a real SQLite store filled through its own methods."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from engine_helpers import T0, at

from pipewarden.engine import queries
from pipewarden.engine.domain import overrides
from pipewarden.engine.domain.errors import NotFound
from pipewarden.engine.domain.events import EVENT_KEYS
from pipewarden.engine.domain.gates import FAIL, PASS, WAIT
from pipewarden.engine.domain.status import ExecutionStatus as E
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.store import EngineStore

COMMIT1 = "a1b2c3d4e5f6" + "1" * 28
COMMIT2 = "9f8e7d6c5b4a" + "2" * 28
COMMIT3 = "0123456789ab" + "3" * 28

GATE_KEYS = ["gate", "result", "code", "reason", "until"]


def definition(name: str = "shop") -> dict[str, Any]:
    """A loader's dict of a valid pipeline: two stages, three hosts."""
    hooks = {"start": "./deploy/start.sh", "validate": "./deploy/validate.sh"}
    return {
        "apiVersion": "pipewarden/v1", "kind": "Pipeline",
        "metadata": {"name": name, "team": "checkout"},
        "build": {"commands": ["make build"]},
        "stages": [
            {"name": "beta", "type": "preprod", "targets": [{"name": "beta-1", "hosts": ["127.0.0.1:9101"]}],
             "deploy": {"hooks": hooks}},
            {"name": "prod-canary", "type": "prod", "canary": True,
             "targets": [{"name": "cell-1", "hosts": ["127.0.0.1:9301", "Cell-2.Shop:80"]}],
             "deploy": {"hooks": hooks}, "bake": {"duration": "60m"}, "rollback": "automatic"},
        ],
    }



def fill(store: EngineStore) -> None:
    """shop-1 went through beta and bakes in prod-canary; shop-2 passed beta and waits at the
    canary's entry (stage_busy); shop-3 failed its policy gate at beta's entry."""
    store.set_definition("shop", definition(), commit=COMMIT2, team="checkout", org="acme", now=T0)
    one = store.create_execution("shop", COMMIT1, trigger="poll", now=at(1))
    store.set_execution_artifact(one.id, COMMIT1[:12])
    beta = store.start_stage_run(one.id, "beta", now=at(2))
    store.record_gate(beta.id, "policy", PASS("no enforce finding"), now=at(2))
    store.set_stage_run_status(beta.id, S.DEPLOYING, now=at(3))
    store.set_host_state("shop", "beta", "beta-1", "127.0.0.1:9101", state="deploying", artifact=COMMIT1[:12],
                         execution=one.id, now=at(3))
    store.set_host_state("shop", "beta", "beta-1", "127.0.0.1:9101", state="ok", artifact=COMMIT1[:12],
                         execution=one.id, now=at(4))
    store.set_stage_run_status(beta.id, S.BAKING, now=at(5))
    store.set_stage_run_status(beta.id, S.SUCCEEDED, now=at(6))
    canary = store.start_stage_run(one.id, "prod-canary", now=at(7))
    store.record_gate(canary.id, "policy", PASS("no enforce finding"), now=at(7))
    store.set_stage_run_status(canary.id, S.DEPLOYING, now=at(8))
    store.set_host_state("shop", "prod-canary", "cell-1", "127.0.0.1:9301", state="ok", artifact=COMMIT1[:12],
                         execution=one.id, now=at(9))
    store.set_host_state("shop", "prod-canary", "cell-1", "cell-2.shop:80", state="failed", artifact=COMMIT1[:12],
                         execution=one.id, now=at(9))
    store.set_stage_run_status(canary.id, S.BAKING, now=at(10))
    store.record_gate(canary.id, "bake_time", WAIT("baking", "baking 0m of 60m", until=at(10 + 3600)), now=at(10))

    two = store.create_execution("shop", COMMIT2, trigger="poll", now=at(20))
    store.set_execution_artifact(two.id, COMMIT2[:12])
    beta2 = store.start_stage_run(two.id, "beta", now=at(21))
    store.set_stage_run_status(beta2.id, S.DEPLOYING, now=at(22))
    store.set_stage_run_status(beta2.id, S.BAKING, now=at(23))
    store.set_stage_run_status(beta2.id, S.SUCCEEDED, now=at(24))
    wait2 = store.start_stage_run(two.id, "prod-canary", now=at(25))
    store.record_gate(wait2.id, "policy", PASS("no enforce finding"), now=at(25))
    store.record_gate(wait2.id, "stage_busy", WAIT("stage_busy", "shop-1 is baking in prod-canary"), now=at(25))

    three = store.create_execution("shop", COMMIT3, trigger="release", now=at(30), actor="dana")
    beta3 = store.start_stage_run(three.id, "beta", now=at(31))
    store.record_gate(beta3.id, "policy", FAIL("enforce_findings", "1 finding at enforce"), now=at(31))
    store.set_stage_run_status(beta3.id, S.FAILED, now=at(31), reason="policy")
    store.set_execution_status(three.id, E.FAILED, now=at(32), reason="policy gate failed")

    window = overrides.grant("window", pipeline="shop", stage="prod-canary", actor="dana", reason="hotfix",
                             now=at(40), ttl_seconds=3600)
    store.put_override(window)
    old = overrides.grant("alarms", pipeline="shop", stage="prod-canary", actor="dana", reason="noisy",
                          now=at(0), ttl_seconds=10)
    store.put_override(old)


def test_status_shape(store: EngineStore) -> None:
    fill(store)
    status = queries.pipeline_status(store, "shop", now=at(100))
    json.dumps(status)  # plain JSON values throughout
    assert list(status) == ["pipeline", "team", "org", "paused", "stages"]
    assert (status["pipeline"], status["team"], status["org"], status["paused"]) == ("shop", "checkout", "acme", False)
    beta, canary = status["stages"]
    assert list(beta) == ["name", "type", "targets", "execution", "next", "overrides"]
    assert (beta["name"], beta["type"]) == ("beta", "preprod")
    assert beta["targets"] == [{"name": "beta-1", "hosts": [
        {"host": "127.0.0.1:9101", "artifact": COMMIT1[:12], "state": "ok"}]}]
    # Everything in beta ended: it holds nothing, nobody waits there.
    assert beta["execution"] is None and beta["next"] is None and beta["overrides"] == []

    assert canary["type"] == "prod"
    assert canary["targets"] == [{"name": "cell-1", "hosts": [
        {"host": "127.0.0.1:9301", "artifact": COMMIT1[:12], "state": "ok"},
        # Found by host key whatever the spelling; the host keeps the definition's spelling.
        {"host": "Cell-2.Shop:80", "artifact": None, "state": "failed"}]}]
    assert canary["execution"] == {
        "id": "shop-1", "artifact": COMMIT1[:12], "commit": COMMIT1, "status": "baking",
        # Past its entry: only the gates that still judge it (policy passed at the entry).
        "gates": [{"gate": "bake_time", "result": "wait", "code": "baking", "reason": "baking 0m of 60m",
                   "until": "2026-12-01T16:00:10.000Z"}]}
    assert canary["next"] == {
        "id": "shop-2", "artifact": COMMIT2[:12], "commit": COMMIT2, "status": "waiting",
        "gates": [{"gate": "policy", "result": "pass", "code": "ok", "reason": "no enforce finding", "until": None},
                  {"gate": "stage_busy", "result": "wait", "code": "stage_busy",
                   "reason": "shop-1 is baking in prod-canary", "until": None}]}
    for gate in canary["execution"]["gates"] + canary["next"]["gates"]:
        assert list(gate) == GATE_KEYS
    # Only active overrides, as the status object writes them.
    assert canary["overrides"] == [{"gate": "window", "actor": "dana", "reason": "hotfix",
                                    "expires": "2026-12-01T16:00:40.000Z"}]
    assert queries.pipeline_status(store, "shop", now=at(40 + 3600))["stages"][1]["overrides"] == []


def test_waiting_alone_is_the_execution_and_failed_holds_until_fixed_forward(store: EngineStore) -> None:
    store.set_definition("shop", definition(), commit=COMMIT1, team="checkout", org=None, now=T0)
    one = store.create_execution("shop", COMMIT1, trigger="poll", now=at(1))
    run = store.start_stage_run(one.id, "beta", now=at(2))
    stage = queries.pipeline_status(store, "shop", now=at(3))["stages"][0]
    assert stage["execution"]["id"] == "shop-1" and stage["execution"]["status"] == "waiting"
    assert stage["next"] is None
    store.set_stage_run_status(run.id, S.DEPLOYING, now=at(4))
    store.set_stage_run_status(run.id, S.FAILED, now=at(5), reason="validate failed on 127.0.0.1:9101")
    store.set_execution_status(one.id, E.FAILED, now=at(5))
    # A failed deploy with rollback: manual holds the stage, for a person to act.
    held = queries.pipeline_status(store, "shop", now=at(6))["stages"][0]
    assert held["execution"]["id"] == "shop-1" and held["execution"]["status"] == "failed"
    two = store.create_execution("shop", COMMIT2, trigger="poll", now=at(7))
    waiting = store.start_stage_run(two.id, "beta", now=at(8))
    both = queries.pipeline_status(store, "shop", now=at(9))["stages"][0]
    assert (both["execution"]["id"], both["next"]["id"]) == ("shop-1", "shop-2")
    store.set_stage_run_status(waiting.id, S.DEPLOYING, now=at(10))
    fixed = queries.pipeline_status(store, "shop", now=at(11))["stages"][0]
    assert fixed["execution"]["id"] == "shop-2" and fixed["execution"]["status"] == "deploying"
    assert fixed["next"] is None


def test_retry_replaces_the_failed_run(store: EngineStore) -> None:
    store.set_definition("shop", definition(), commit=COMMIT1, team="checkout", org=None, now=T0)
    one = store.create_execution("shop", COMMIT1, trigger="poll", now=at(1))
    run = store.start_stage_run(one.id, "beta", now=at(2))
    store.set_stage_run_status(run.id, S.DEPLOYING, now=at(3))
    store.set_stage_run_status(run.id, S.FAILED, now=at(4))
    store.set_execution_status(one.id, E.FAILED, now=at(4))
    store.set_execution_status(one.id, E.RUNNING, now=at(5))
    store.start_stage_run(one.id, "beta", now=at(5))
    stage = queries.pipeline_status(store, "shop", now=at(6))["stages"][0]
    assert stage["execution"]["status"] == "waiting" and stage["next"] is None


def test_pipeline_without_definition_and_unknown(store: EngineStore) -> None:
    store.ensure_pipeline("bare", now=T0)
    store.set_paused("bare", True, actor="dana", now=at(1), reason="freeze")
    assert queries.pipeline_status(store, "bare", now=at(2)) == {
        "pipeline": "bare", "team": None, "org": None, "paused": True, "stages": []}
    with pytest.raises(NotFound):
        queries.pipeline_status(store, "nope", now=at(2))


def test_all_status(store: EngineStore) -> None:
    assert queries.all_status(store, now=T0) == {"pipelines": []}
    fill(store)
    store.ensure_pipeline("alpha", now=T0)
    listed = queries.all_status(store, now=at(100))
    assert [p["pipeline"] for p in listed["pipelines"]] == ["alpha", "shop"]
    assert listed["pipelines"][1] == queries.pipeline_status(store, "shop", now=at(100))


def test_executions_list(store: EngineStore) -> None:
    fill(store)
    store.create_execution("cart", COMMIT1, trigger="poll", now=at(50))
    listed = queries.executions_list(store)
    assert [e["id"] for e in listed["executions"]] == ["cart-1", "shop-3", "shop-2", "shop-1"]
    assert listed["executions"][1] == {
        "id": "shop-3", "pipeline": "shop", "commit": COMMIT3, "artifact": None, "status": "failed",
        "stage": "beta", "started": "2026-12-01T15:00:30.000Z", "finished": "2026-12-01T15:00:32.000Z",
        "reason": "policy gate failed"}
    # Building: no stage yet, no artifact.
    assert listed["executions"][0]["stage"] is None and listed["executions"][0]["finished"] is None
    assert listed["executions"][0]["reason"] is None  # running: no reason yet
    assert [e["id"] for e in queries.executions_list(store, pipeline="shop", limit=2)["executions"]] == [
        "shop-3", "shop-2"]


def test_execution_show(store: EngineStore) -> None:
    fill(store)
    shown = queries.execution_show(store, "shop-2")
    assert list(shown) == ["id", "pipeline", "commit", "artifact", "status", "stage", "started", "finished",
                           "reason", "stages", "events"]
    assert (shown["status"], shown["stage"]) == ("running", "prod-canary")
    beta, canary = shown["stages"]
    assert [beta["name"], canary["name"]] == ["beta", "prod-canary"]
    assert beta["execution"]["status"] == "succeeded" and beta["execution"]["attempt"] == 1
    assert canary["execution"]["status"] == "waiting"
    assert [g["gate"] for g in canary["execution"]["gates"]] == ["policy", "stage_busy"]
    assert canary["targets"][0]["name"] == "cell-1"
    assert [e["type"] for e in shown["events"]] == ["execution_started", "gate", "gate"]
    assert all(list(e) == list(EVENT_KEYS) for e in shown["events"])
    # A stage not reached is pending.
    failed = queries.execution_show(store, "shop-3")
    assert [s["execution"]["status"] for s in failed["stages"]] == ["failed", "pending"]
    assert failed["stages"][1]["execution"]["gates"] == []
    assert failed["stages"][0]["execution"]["reason"] == "policy"
    with pytest.raises(NotFound):
        queries.execution_show(store, "shop-99")


def test_execution_show_lists_the_stages_of_the_executions_own_definition(store: EngineStore) -> None:
    fill(store)
    own = definition()
    own["stages"] = [own["stages"][0]]  # shop-1's commit had beta only; the newest has two stages
    store.set_execution_definition("shop-1", own)
    store.set_execution_definition("shop-1", definition())  # a retried policy check keeps the first
    shown = queries.execution_show(store, "shop-1")
    # beta from its own definition; prod-canary, which it ran, after it without targets
    assert [(s["name"], bool(s["targets"])) for s in shown["stages"]] == [("beta", True), ("prod-canary", False)]
    assert [s["name"] for s in queries.execution_show(store, "shop-2")["stages"]] == ["beta", "prod-canary"]


def test_events(store: EngineStore) -> None:
    fill(store)
    every = queries.events(store)
    assert [e["seq"] for e in every] == list(range(1, len(every) + 1))
    assert all(list(e) == list(EVENT_KEYS) for e in every)
    assert {e["execution"] for e in queries.events(store, execution="shop-1")} == {"shop-1"}
    later = queries.events(store, since=T0 + timedelta(seconds=30))
    assert later and all(e["time"] >= "2026-12-01T15:00:30.000Z" for e in later)
    assert [e["seq"] for e in queries.events(store, after=2, limit=2)] == [3, 4]
    assert queries.events(store, pipeline="nope") == []
