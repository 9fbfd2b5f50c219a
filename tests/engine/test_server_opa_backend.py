"""`pipewarden server --opa-url` end to end (issue 16): a real server process whose policy gate
evaluates the rules on an OPA server (the tests' OPA-protocol server on OPA's own evaluator,
tests/opa_server.py; no `opa` binary installs here). The poller releases the head; the policy
gate's evaluations reach the OPA server (its Data API counts them, and it holds the modules
uploaded under `pipewarden/`); the release succeeds as with the embedded engine."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from server_helpers import ServerProcess, single_pipeline
from test_decision_api_server import PIPELINE, PIPELINE_YAML, wait_for

from opa_server import OpaTestServer

pytestmark = pytest.mark.usefixtures("needs_temporal")

# The decision API test's pipeline, without its approval: released straight through.
UNGATED = PIPELINE_YAML.replace("    approvals: [{name: qa-lead, type: manual}]\n", "")


def test_the_policy_gate_of_a_server_runs_on_the_organisations_opa(tmp_path: Path) -> None:
    _, _, config = single_pipeline(tmp_path, UNGATED)
    state = tmp_path / "state"
    with OpaTestServer(token="opa-secret") as opa, \
            ServerProcess(state, "--config", str(config), "--opa-url", opa.url, "--opa-token", "opa-secret") as server:
        auth = {"Authorization": f"Bearer {(state / 'admin-token').read_text().strip()}"}

        def finished() -> dict[str, object] | None:
            listed = httpx.get(f"{server.url}/api/v1/executions?pipeline={PIPELINE}", headers=auth, timeout=30)
            executions = listed.json()["executions"] if listed.status_code == 200 else []
            done = [e for e in executions if e["status"] != "running"]
            return done[0] if done else None

        execution = wait_for("the release to finish", finished)
        assert execution["status"] == "succeeded", execution
        gates = httpx.get(f"{server.url}/api/v1/events?execution={PIPELINE}-1", headers=auth, timeout=30).json()
        policy = [e["data"] for e in gates if e["type"] == "gate" and e["data"]["gate"] == "policy"]
        assert policy and all(data["result"] == "pass" for data in policy)
        # Every policy gate (before the build, and at the stage's entry) asked the OPA server.
        assert opa.data_requests >= len(policy)
        assert any(module.startswith("pipewarden/rules/") for module in opa.store.modules())
