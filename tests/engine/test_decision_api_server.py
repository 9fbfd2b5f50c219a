"""The OPA decision API end to end: `pipewarden server` as a real process (embedded Temporal, its
poller, its worker) with one pipeline whose only stage wants an approval. The poller releases the
head; its execution waits at the stage's entry. The decision API, asked about the same commit and
stage with curl's requests (httpx) and with `opa-python-client`, answers the same gates, results
and codes as the engine recorded for that execution; it follows a pause and an approval given
through the JSON API; it wants the admin token; an unknown path is `{}`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from opa_client import OpaClient
from server_helpers import ServerProcess, single_pipeline

PIPELINE = "gated-app"
RELEASE = "/v1/data/pipewarden/release/allow"
PIPELINE_YAML = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: gated-app, team: demo}
build:
  commands: ["mkdir -p dist && cp app.txt dist/"]
  artifact: dist/
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-cell, hosts: ["127.0.0.1:9601"]}]
    deploy:
      hooks: {start: ./ok.sh}
    approvals: [{name: qa-lead, type: manual}]
    bake: {duration: 1s}
    rollback: automatic
"""
WAIT_SECONDS = 60


pytestmark = pytest.mark.usefixtures("needs_temporal")


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {WAIT_SECONDS}s for {what}")


def test_the_decision_api_of_a_running_server(tmp_path: Path) -> None:
    _, head, config = single_pipeline(tmp_path, PIPELINE_YAML)
    state = tmp_path / "state"
    with ServerProcess(state, "--config", str(config)) as server:
        url = server.url
        token = (state / "admin-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        question = {"input": {"pipeline": PIPELINE, "stage": "beta", "commit": head}}

        def ask() -> dict[str, Any]:
            answer = httpx.post(url + RELEASE, json=question, headers=auth, timeout=60)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()["result"]
            return result

        def engine_gates() -> list[dict[str, Any]] | None:
            status = httpx.get(f"{url}/api/v1/pipelines/{PIPELINE}", headers=auth, timeout=30)
            if status.status_code != 200:
                return None
            execution = status.json()["stages"][0]["execution"]
            if execution is None or execution["status"] != "waiting":
                return None
            gates: list[dict[str, Any]] = execution["gates"]
            return gates if any(g["gate"] == "approval" for g in gates) else None

        # The poller released the head; the engine holds it at beta's entry for its approval.
        recorded = wait_for("the execution to wait for its approval", engine_gates)
        decided = ask()
        assert decided["allow"] is False and decided["execution"] == f"{PIPELINE}-1"
        # The same gates with the same results and codes as the engine's own (the status lists
        # them in its own order; the decision in engine.md's).
        assert [g["gate"] for g in decided["gates"]] == ["policy", "blocklist", "approval", "stage_busy", "paused"]
        assert sorted((g["gate"], g["result"], g["code"]) for g in decided["gates"]) == sorted(
            (g["gate"], g["result"], g["code"]) for g in recorded)
        assert decided["reason"] == "approval: waiting for approval: qa-lead"

        # Without the token: 401; an unknown path: {}.
        assert httpx.post(url + RELEASE, json=question, timeout=30).status_code == 401
        assert httpx.post(url + RELEASE, json=question, timeout=30,
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
        unknown = httpx.post(url + "/v1/data/pipewarden/deploy/allow", json=question, headers=auth, timeout=30)
        assert (unknown.status_code, unknown.json()) == (200, {})

        # opa-python-client, as a deploy tool's hook would ask.
        host = urlsplit(url)
        assert host.hostname is not None and host.port is not None
        client = OpaClient(host=host.hostname, port=host.port, token=token, timeout=60)
        anonymous = OpaClient(host=host.hostname, port=host.port, timeout=60)
        try:
            seen = client.query_rule(input_data=question["input"], package_path="pipewarden/release", rule_name="allow")
            assert seen["result"]["allow"] is False
            with pytest.raises(requests.HTTPError) as raised:
                anonymous.query_rule(input_data=question["input"], package_path="pipewarden/release", rule_name="allow")
            assert raised.value.response.status_code == 401

            # A pause through the JSON API closes the stage for the decision too.
            assert httpx.post(f"{url}/api/v1/pipelines/{PIPELINE}/pause", json={"reason": "freeze"}, headers=auth,
                              timeout=30).status_code == 200
            paused = {g["gate"]: (g["result"], g["code"]) for g in ask()["gates"]}
            assert paused["paused"] == ("wait", "paused")
            assert httpx.post(f"{url}/api/v1/pipelines/{PIPELINE}/resume", json={}, headers=auth,
                              timeout=30).status_code == 200

            # The approval given through the JSON API counts for the decision at once.
            approved = httpx.post(f"{url}/api/v1/executions/{PIPELINE}-1/approve", json={"stage": "beta"},
                                  headers=auth, timeout=30)
            assert approved.status_code == 200, approved.text
            allowed = client.query_rule(input_data=question["input"], package_path="pipewarden/release/allow",
                                        rule_name="allow")
            assert allowed == {"result": True}, ask()

            # check of the same definition, sent as JSON.
            checked = client.query_rule(input_data={"apiVersion": "pipewarden/v1", "kind": "Pipeline"},
                                        package_path="pipewarden", rule_name="check")
            assert checked["result"]["allow"] is False
            assert {f["rule"] for f in checked["result"]["findings"]} == {"valid-definition"}
        finally:
            client.close_connection()
            anonymous.close_connection()
        assert server.stop() == 0, server.output()
