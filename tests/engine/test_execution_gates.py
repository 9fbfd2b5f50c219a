"""ExecutionWorkflow at its gates, on the real dev server: the policy gate before the build, a
failing build, an approval and a manual promotion given by signal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from client_helpers import register
from temporalio.client import Client
from workflow_helpers import git, make_repo, release, write

from pipewarden.engine.client import EngineClient
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore


def test_an_invalid_definition_fails_at_the_policy_gate_before_any_build(temporal_server: DevServer,
                                                                         tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    text = (repo / "pipeline.yaml").read_text().replace("    rollback: automatic\n", "    rollback: sometimes\n")
    write(repo / "pipeline.yaml", text)
    git(repo, "commit", "-q", "-am", "invalid rollback value")
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        (outcome,) = asyncio.run(release(temporal_server, store, state, repo, [git(repo, "rev-parse", "HEAD")]))
        assert outcome.status == "failed"
        assert outcome.reason is not None and outcome.reason.startswith("policy: ")
        events = store.events(execution="demo-app-1")
        assert [e.type for e in events] == ["execution_started", "gate", "execution_finished"]
        gate = events[1].data
        assert (gate["gate"], gate["result"], gate["code"]) == ("policy", "fail", "enforce_findings")
        assert "valid-definition" in gate["reason"]
        assert not record.exists() and not (state / "work").exists()
        assert store.verify() is None


def test_a_failing_build_command_fails_the_execution(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1, build="echo building; exit 3")
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        (outcome,) = asyncio.run(release(temporal_server, store, state, repo, [git(repo, "rev-parse", "HEAD")]))
        assert outcome.status == "failed"
        assert outcome.reason == ("build: build command 1 (echo building; exit 3) exited 3; "
                                  "output in logs/demo-app-1/build/command_1.log")
        events = store.events(execution="demo-app-1")
        assert [e.type for e in events] == ["execution_started", "gate", "build_started", "build_finished",
                                            "execution_finished"]
        assert events[3].data["result"] == "failed" and events[3].data["artifact"] is None
        assert "building" in (state / "logs" / "demo-app-1" / "build" / "command_1.log").read_text()
        assert not record.exists()
        assert store.execution("demo-app-1").artifact is None  # type: ignore[union-attr]


def test_approval_and_manual_promotion_by_signal(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    extra = "    approvals: [{name: qa-lead, type: manual}]\n    promotion: manual\n"
    repo = make_repo(tmp_path, record, stages=2, beta_extra=extra)
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        register(store, repo)  # where EngineClient reads the execution's definition

        async def wait_for(condition: str, check: object) -> None:
            deadline = time.monotonic() + 30
            while not check():  # type: ignore[operator]
                assert time.monotonic() < deadline, f"timed out waiting for {condition}"
                await asyncio.sleep(0.1)

        async def interact(client: Client, execution: str) -> None:
            def waiting_for_approval() -> bool:
                return any(e.type == "gate" and e.data["code"] == "approval_missing"
                           for e in store.events(execution=execution))

            await wait_for("the approval gate to wait", waiting_for_approval)
            assert not record.exists()  # nothing deployed before the approval
            engine = EngineClient(client, store)
            await engine.approve(execution, "beta", "qa-lead", actor="dana", reason="looks good")

            def awaiting_promotion() -> bool:
                return any(r.status == "awaiting_promotion" for r in store.stage_runs(execution=execution))

            await wait_for("awaiting_promotion", awaiting_promotion)
            assert all(line.startswith("beta ") for line in record.read_text().splitlines())
            await engine.promote(execution, "beta", actor="dana")

        (outcome,) = asyncio.run(release(temporal_server, store, state, repo, [git(repo, "rev-parse", "HEAD")],
                                         interact))
        assert outcome.status == "succeeded", outcome
        events = store.events(execution="demo-app-1")
        approved = [e for e in events if e.type == "approved"]
        assert [(e.actor, e.stage, e.data) for e in approved] == [
            ("dana", "beta", {"reason": "looks good", "approval": "qa-lead"})]
        promoted = [e for e in events if e.type == "promoted"]
        assert [(e.actor, e.stage) for e in promoted] == [("dana", "beta")]
        approval_gates = [(e.data["result"], e.data["code"]) for e in events
                          if e.type == "gate" and e.data["gate"] == "approval"]
        assert approval_gates == [("wait", "approval_missing"), ("pass", "ok")]
        assert [line.split()[0] for line in record.read_text().splitlines()].count("prod") == 8
        assert store.verify() is None
