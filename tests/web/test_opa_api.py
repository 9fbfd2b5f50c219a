"""The OPA decision API (server.md, "OPA") over real HTTP: the web app under uvicorn on a loopback
port, a real SQLite store, a real git repository, the engine's real activities judging the entry
gates (engine/decisions.py), and two clients: httpx as curl would send the requests, and
`opa-python-client` 3.0.0 as a deploy tool would.

Allowed and refused releases (paused pipeline, stage busy, an enforce finding, approval missing,
blocklisted commit, and the ways through: an override, an approval), unknown paths (`{}`),
missing and bad tokens (401), malformed bodies (400), and `check` of a document sent as JSON,
compared finding for finding with `pipewarden check --format json` of the same text."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import yaml
from click.testing import CliRunner
from opa_client import OpaClient

from live_server import TOKEN, FakeServices, RecordingClient, serving
from pipewarden.cli.main import cli
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.decisions import Decisions
from pipewarden.engine.domain.events import draft
from pipewarden.engine.domain.overrides import grant
from pipewarden.engine.domain.status import StageRunStatus
from pipewarden.engine.store import EngineStore
from pipewarden.web.app import create_app

PIPELINE = "demo-app"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RELEASE = "/v1/data/pipewarden/release/allow"
CHECK = "/v1/data/pipewarden/check"

PIPELINE_YAML = """apiVersion: pipewarden/v1
kind: Pipeline
metadata:
  name: demo-app
  team: demo
build:
  commands: ["mkdir -p dist && cp app.txt dist/"]
  artifact: dist/
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-cell, hosts: ["127.0.0.1:9301", "127.0.0.1:9302"]}]
    deploy:
      hooks: {start: ./hooks/start.sh, validate: ./hooks/validate.sh}
      min_healthy: 50%
    bake: {duration: 1s}
    rollback: automatic
  - name: prod
    type: prod
    targets: [{name: cell-1, hosts: ["127.0.0.1:9401", "127.0.0.1:9402"]}]
    deploy:
      hooks: {start: ./hooks/start.sh, validate: ./hooks/validate.sh}
      min_healthy: 50%
    approvals: [{name: qa-lead, type: manual}]
    bake: {duration: 1s}
    rollback: automatic
"""
ROOT_ORG = "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme, owners: [ops]}\n"
SHOP_ORG = ("apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: shop, parent: acme, owners: [ops]}\n"
            "teams: [demo]\n")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit_file(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class DecidingServices(FakeServices):
    """FakeServices (tests/live_server.py) plus the real decision API answers."""

    decisions: Any = field(default=None)


@dataclass
class World:
    url: str
    store: EngineStore
    repo: Path
    org: Path
    head: str
    clock: list[datetime]
    services: DecidingServices

    def post(self, path: str, body: Any, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=AUTH if headers is None else headers, timeout=60)

    def release(self, stage: str, commit: str | None = None) -> dict[str, Any]:
        answer = self.post(RELEASE, {"input": {"pipeline": PIPELINE, "stage": stage, "commit": commit or self.head}})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()["result"]
        return result


def gates(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {g["gate"]: (g["result"], g["code"]) for g in result["gates"]}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test Dev")
    git(repo, "config", "user.email", "dev@example.com")
    (repo / "app.txt").write_text("v1\n")
    head = commit_file(repo, "pipeline.yaml", PIPELINE_YAML, "v1")
    org = tmp_path / "org"
    org.mkdir()
    (org / "acme.yaml").write_text(ROOT_ORG)
    (org / "shop.yaml").write_text(SHOP_ORG)
    clock = [NOW]
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        store.set_pipeline_source(PIPELINE, repo=str(repo), branch="main", path="pipeline.yaml", now=NOW)
        store.set_definition(PIPELINE, yaml.safe_load(PIPELINE_YAML), commit=head, team="demo", org="shop", now=NOW)
        activities = EngineActivities(store, tmp_path / "state", org_config=str(org), pipelines=[PIPELINE])
        services = DecidingServices(store, RecordingClient(store, lambda: clock[0]), clock=lambda: clock[0],
                                    decisions=Decisions(activities, poll_gates_seconds=10))
        with serving(create_app(services)) as url:
            yield World(url, store, repo, org, head, clock, services)


def test_an_allowed_release_and_the_parts_of_its_answer(world: World) -> None:
    result = world.release("beta", world.head[:10])  # an abbreviated commit is resolved
    assert result["allow"] is True
    assert result["reason"] == "every entry gate passes"
    assert (result["pipeline"], result["stage"], result["commit"], result["artifact"], result["execution"]) == (
        PIPELINE, "beta", world.head, world.head[:12], None)
    # engine.md's order; beta has no approvals, window or alarms.
    assert [g["gate"] for g in result["gates"]] == ["policy", "blocklist", "stage_busy", "paused"]
    assert all(list(g) == ["gate", "result", "code", "reason", "until"] for g in result["gates"])
    assert {g["result"] for g in result["gates"]} == {"pass"}
    # Deeper paths select inside the decision, as OPA's Data API does.
    one = world.post(RELEASE + "/allow", {"input": {"pipeline": PIPELINE, "stage": "beta", "commit": world.head}})
    assert one.json() == {"result": True}
    first = world.post(RELEASE + "/gates/0/gate", {"input": {"pipeline": PIPELINE, "stage": "beta",
                                                             "commit": world.head}})
    assert first.json() == {"result": "policy"}
    # GET with the input in the query, as OPA takes it.
    got = httpx.get(world.url + RELEASE, params={"input": json.dumps({"pipeline": PIPELINE, "stage": "beta",
                                                                        "commit": world.head})},
                    headers=AUTH, timeout=60)
    assert got.status_code == 200 and got.json()["result"]["allow"] is True
    # A parent path answers the documents below it that the input fits.
    parent = world.post("/v1/data", {"input": {"pipeline": PIPELINE, "stage": "beta", "commit": world.head}})
    assert parent.json()["result"]["pipewarden"]["release"]["allow"]["allow"] is True
    assert "check" not in parent.json()["result"]["pipewarden"]
    # Asking records nothing: no event, no stage run.
    assert world.store.events(types=["gate"]) == [] and world.store.stage_runs(pipeline=PIPELINE) == []


def test_a_paused_pipeline_is_refused_until_resumed(world: World) -> None:
    world.store.set_paused(PIPELINE, True, actor="dana", now=NOW, reason="incident 42")
    result = world.release("beta")
    assert result["allow"] is False
    assert gates(result)["paused"] == ("wait", "paused")
    assert result["reason"].startswith("paused: ") and "incident 42" in result["reason"]
    world.store.set_paused(PIPELINE, False, actor="dana", now=NOW)
    assert world.release("beta")["allow"] is True


def test_a_busy_stage_is_refused_but_not_for_the_execution_occupying_it(world: World) -> None:
    other = commit_file(world.repo, "app.txt", "v2\n", "v2")
    occupant = world.store.create_execution(PIPELINE, other, trigger="poll", now=NOW)
    run = world.store.start_stage_run(occupant.id, "beta", now=NOW)
    world.store.set_stage_run_status(run.id, StageRunStatus.DEPLOYING, now=NOW)
    refused = world.release("beta")
    assert refused["allow"] is False
    assert gates(refused)["stage_busy"] == ("wait", "stage_busy")
    assert occupant.id in refused["reason"]
    # The occupant's own commit: its execution counts as itself, as at its own entry.
    own = world.release("beta", other)
    assert own["execution"] == occupant.id and gates(own)["stage_busy"] == ("pass", "ok")


def test_an_enforce_finding_fails_the_policy_gate(world: World) -> None:
    broken = commit_file(world.repo, "pipeline.yaml", PIPELINE_YAML.replace("rollback: automatic", "rollback: maybe", 1),
                         "an invalid rollback value")
    result = world.release("beta", broken)
    assert result["allow"] is False
    assert gates(result)["policy"] == ("fail", "enforce_findings")
    assert result["reason"].startswith("policy: ") and "valid-definition" in result["reason"]
    # The definition of the commit asked about counts, not the branch head's: the first commit passes.
    assert world.release("beta", world.head)["allow"] is True


def test_a_missing_approval_waits_until_the_execution_of_the_commit_has_it(world: World) -> None:
    result = world.release("prod")
    assert result["allow"] is False
    assert [g["gate"] for g in result["gates"]] == ["policy", "blocklist", "approval", "stage_busy", "paused"]
    assert gates(result)["approval"] == ("wait", "approval_missing")
    assert result["reason"] == "approval: waiting for approval: qa-lead"
    execution = world.store.create_execution(PIPELINE, world.head, trigger="release", now=NOW)
    world.store.append_event(draft("approved", time=NOW, pipeline=PIPELINE, execution=execution.id, stage="prod",
                                   actor="dana", data={"reason": None, "approval": "qa-lead"}))
    approved = world.release("prod")
    assert approved["execution"] == execution.id
    assert gates(approved)["approval"] == ("pass", "ok") and approved["allow"] is True


def test_a_blocklisted_commit_fails_until_overridden(world: World) -> None:
    (world.org / "shop.yaml").write_text(SHOP_ORG + "blocklist:\n  git_refs:\n"
                                         f"    - {{ref: '{world.head}', reason: leaks secrets}}\n")
    result = world.release("beta")
    assert result["allow"] is False
    assert gates(result)["blocklist"] == ("fail", "blocked_commit")
    assert "leaks secrets" in result["reason"]
    world.store.put_override(grant("blocklist", pipeline=PIPELINE, stage="beta", actor="dana", reason="accepted risk",
                                   now=NOW, ttl_seconds=3600))
    assert world.release("beta")["allow"] is True  # overrides apply as the engine applies them
    world.clock[0] = NOW + timedelta(hours=2)  # the override has expired
    assert world.release("beta")["allow"] is False


def test_what_cannot_be_judged_is_refused_with_its_reason(world: World) -> None:
    unknown = world.post(RELEASE, {"input": {"pipeline": "nope", "stage": "beta", "commit": world.head}}).json()
    assert unknown["result"]["allow"] is False and "no pipeline named 'nope'" in unknown["result"]["reason"]
    missing = world.release("beta", "0123abcd" * 5)
    assert missing["allow"] is False and "is not in the repository" in missing["reason"]
    stage = world.release("gamma")
    assert stage["allow"] is False and "has no stage 'gamma' (beta, prod)" in stage["reason"]


@pytest.mark.parametrize("body", [
    b"{not json", b"[1, 2]", b'{"input": "beta"}', b'{"nothing": 1}', b"",
    b'{"input": {"pipeline": "demo-app", "stage": "beta"}}',
    b'{"input": {"pipeline": "demo-app", "stage": "beta", "commit": "not-hex!"}}',
    b'{"input": {"pipeline": "demo-app", "stage": 3, "commit": "abcd"}}'])
def test_malformed_requests_are_400_in_both_shapes(world: World, body: bytes) -> None:
    answer = httpx.post(world.url + RELEASE, content=body, headers={**AUTH, "Content-Type": "application/json"},
                        timeout=30)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["code"] == "invalid_parameter" and error["error"] == error["message"] and error["error"]


def test_unknown_paths_answer_an_empty_object(world: World) -> None:
    for path in ["/v1/data/nothing", "/v1/data/pipewarden/release/deny", "/v1/data/pipewarden/nothing/allow",
                 RELEASE + "/nothing", RELEASE + "/gates/99"]:
        answer = world.post(path, {"input": {"pipeline": PIPELINE, "stage": "beta", "commit": world.head}})
        assert (answer.status_code, answer.json()) == (200, {}), path
        if not path.startswith(RELEASE):  # the decision itself needs its input (400 without)
            got = httpx.get(world.url + path, headers=AUTH, timeout=30)
            assert (got.status_code, got.json()) == (200, {}), path
    # A parent without an input that fits: the package's (empty) object, as OPA's.
    assert world.post("/v1/data/pipewarden/release", {}).json() == {"result": {}}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_every_decision_path_needs_the_token(world: World, headers: dict[str, str]) -> None:
    for path in [RELEASE, CHECK, "/v1/data", "/v1/data/nothing"]:
        for method in ("POST", "GET"):
            answer = httpx.request(method, world.url + path, headers=headers, timeout=30,
                                   json={"input": {"pipeline": PIPELINE, "stage": "beta", "commit": world.head}})
            assert answer.status_code == 401, (method, path)
            assert answer.json()["code"] == "unauthorized" and answer.json()["error"]
            assert answer.headers["www-authenticate"] == "Bearer"


def test_opa_health_follows_the_server(world: World) -> None:
    assert (httpx.get(world.url + "/health", headers=AUTH, timeout=30).json()) == {}
    assert httpx.get(world.url + "/health", timeout=30).status_code == 401
    services = world.services
    services.healthy = False
    unhealthy = httpx.get(world.url + "/health", headers=AUTH, timeout=30)
    assert unhealthy.status_code == 500 and unhealthy.json()["code"] == "internal_error"


def test_metrics_and_pretty_as_opa_offers_them(world: World) -> None:
    answer = world.post(RELEASE + "?metrics=true&pretty=true",
                        {"input": {"pipeline": PIPELINE, "stage": "beta", "commit": world.head}})
    assert answer.text.startswith("{\n  ")
    assert answer.json()["metrics"]["timer_server_handler_ns"] > 0


def _check_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: Any, org: Path) -> dict[str, Any]:
    """`pipewarden check --format json` of a file named `input` holding `document` as the decision
    API renders it (two-space JSON)."""
    folder = tmp_path / "cli"
    folder.mkdir(exist_ok=True)
    (folder / "input").write_text(json.dumps(document, indent=2) + "\n")
    monkeypatch.chdir(folder)
    ran = CliRunner().invoke(cli, ["check", "input", "--format", "json", "--org-config", str(org),
                                   "--now", NOW.isoformat()])
    assert ran.exit_code in (0, 1), ran.output
    data: dict[str, Any] = json.loads(ran.stdout)
    return data


@pytest.mark.parametrize("variant", ["valid", "warned", "invalid", "not a mapping"])
def test_check_answers_the_findings_of_check(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             variant: str) -> None:
    document: Any = yaml.safe_load(PIPELINE_YAML)
    if variant == "warned":
        document["stages"][1]["bake"] = {"duration": "1m"}  # a prod stage baking a minute: warnings
    elif variant == "invalid":
        document["stages"][0]["rollback"] = "maybe"
    elif variant == "not a mapping":
        document = ["apiVersion", "pipewarden/v1"]
    answer = world.post(CHECK, {"input": document})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    expected = _check_json(tmp_path, monkeypatch, document, world.org)
    assert result["findings"] == expected["findings"]
    assert result["pipeline"] == expected["pipelines"][0]
    assert result["allow"] == (expected["summary"]["enforce"] == 0)
    if variant in ("invalid", "not a mapping"):
        assert result["allow"] is False
        assert {f["rule"] for f in result["findings"]} == {"valid-definition"}
    if variant == "warned":
        assert result["findings"] and result["allow"] is True
    assert world.post(CHECK + "/findings", {"input": document}).json() == {"result": result["findings"]}


def test_check_without_input_is_400(world: World) -> None:
    answer = world.post(CHECK, {})
    assert answer.status_code == 400 and "input is required" in answer.json()["error"]


def _opa(world: World, token: str | None = TOKEN) -> OpaClient:
    url = urlsplit(world.url)
    assert url.hostname is not None and url.port is not None
    return OpaClient(host=url.hostname, port=url.port, token=token, timeout=60)


def test_through_opa_python_client(world: World) -> None:
    client = _opa(world)
    try:
        answer = client.query_rule(input_data={"pipeline": PIPELINE, "stage": "beta", "commit": world.head},
                                   package_path="pipewarden/release", rule_name="allow")
        assert answer["result"]["allow"] is True
        refused = client.query_rule(input_data={"pipeline": PIPELINE, "stage": "prod", "commit": world.head},
                                    package_path="pipewarden.release", rule_name="allow")
        assert refused["result"]["allow"] is False and gates(refused["result"])["approval"][1] == "approval_missing"
        boolean = client.query_rule(input_data={"pipeline": PIPELINE, "stage": "beta", "commit": world.head},
                                    package_path="pipewarden/release/allow", rule_name="allow")
        assert boolean == {"result": True}
        checked = client.query_rule(input_data=yaml.safe_load(PIPELINE_YAML), package_path="pipewarden",
                                    rule_name="check")
        assert checked["result"]["allow"] is True
        assert client.query_rule(input_data={}, package_path="pipewarden/nothing", rule_name="allow") == {}
        assert client.check_health() is True
    finally:
        client.close_connection()
    for token in (None, "wrong"):
        anonymous = _opa(world, token)
        try:
            assert anonymous.check_health() is False  # OPA's health API wants the token too
            with pytest.raises(requests.HTTPError) as raised:
                anonymous.query_rule(input_data={"pipeline": PIPELINE, "stage": "beta", "commit": world.head},
                                     package_path="pipewarden/release", rule_name="allow")
            assert raised.value.response.status_code == 401
        finally:
            anonymous.close_connection()
