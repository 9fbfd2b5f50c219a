"""`EngineClient` on the real dev server: release, approve, promote, pause, resume, override and
revoke, with their refusals (each a `refused` event with its actor) and NotFound / InvalidValue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from client_helpers import (
    PIPELINE,
    gate_seen,
    outcome,
    refusals,
    register,
    run_status,
    running_engine,
    wait_for,
)
from temporalio.client import Client
from workflow_helpers import git, make_repo, write

from pipewarden.engine.client import EngineClient
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.domain.errors import InvalidValue, NotFound, Refused
from pipewarden.engine.store import EngineStore


def test_release_of_the_head_marks_it_released_and_bad_names_are_refused(temporal_server: DevServer,
                                                                          tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    v1 = git(repo, "rev-parse", "HEAD")
    write(repo / "app.txt", "v2\n")
    git(repo, "commit", "-q", "-am", "v2")
    v2 = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            with pytest.raises(NotFound):
                await engine.release("no-such-pipeline", actor="dana")
            register(store, repo)
            with pytest.raises(InvalidValue, match="not a commit name"):
                await engine.release(PIPELINE, "--upload-pack=x", actor="dana")
            with pytest.raises(InvalidValue, match="is not in"):
                await engine.release(PIPELINE, "0123456789abcdef", actor="dana")
            await engine.pause(PIPELINE, actor="dana", reason="release by hand")
            with pytest.raises(Refused, match="already paused"):
                await engine.pause(PIPELINE, actor="erin")
            older = await engine.release(PIPELINE, v1[:10].upper(), actor="dana")
            assert (older.id, older.commit, older.trigger) == ("demo-app-1", v1, "release")
            assert store.pipeline(PIPELINE).last_commit is None  # type: ignore[union-attr]
            head = await engine.release(PIPELINE, actor="dana", reason="ship it")
            assert (head.id, head.commit) == ("demo-app-2", v2)
            assert store.pipeline(PIPELINE).last_commit == v2  # type: ignore[union-attr]
            await wait_for("the paused gate", gate_seen(store, "demo-app-2", "paused", "paused"))
            await engine.resume(PIPELINE, actor="dana")
            assert (await outcome(engine, "demo-app-2")).status == "succeeded"
            # both waited at beta's entry: the older one was superseded when the newer arrived
            assert (await outcome(engine, "demo-app-1")).status == "superseded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        started = store.events(types=["execution_started"])
        assert [(e.execution, e.actor, e.data["trigger"], e.data.get("reason")) for e in started] == [
            ("demo-app-1", "dana", "release", None), ("demo-app-2", "dana", "release", "ship it")]
        assert "reason" not in started[0].data
        assert [(e.type, e.actor, e.data["reason"]) for e in store.events(types=["paused", "resumed"])] == [
            ("paused", "dana", "release by hand"), ("resumed", "dana", None)]
        assert refusals(store) == [("pause", "erin", f"pipeline {PIPELINE} is already paused")]
        assert store.verify() is None


def test_approve_and_promote_are_checked_against_the_store(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    extra = "    approvals: [{name: qa-lead, type: manual}]\n    promotion: manual\n"
    repo = make_repo(tmp_path, record, stages=2, beta_extra=extra)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the approval gate", gate_seen(store, execution, "approval", "approval_missing"))
            with pytest.raises(NotFound):
                await engine.approve("demo-app-9", "beta", actor="dana")
            with pytest.raises(NotFound):
                await engine.approve(execution, "gamma", actor="dana")
            with pytest.raises(Refused):
                await engine.promote(execution, "beta", actor="dana")
            with pytest.raises(Refused):
                await engine.approve(execution, "beta", "cto", actor="dana")
            with pytest.raises(Refused):
                await engine.approve(execution, "prod", actor="dana")  # prod lists no approvals
            assert await engine.approve(execution, "beta", actor="dana", reason="looks good") == "qa-lead"
            with pytest.raises(Refused):
                await engine.approve(execution, "beta", actor="erin")
            await wait_for("awaiting_promotion", run_status(store, execution, "awaiting_promotion", "beta"))
            with pytest.raises(NotFound):
                await engine.promote(execution, "beta-2", actor="dana")
            await engine.promote(execution, "prod", actor="dana")  # the next stage's name is accepted
            assert (await outcome(engine, execution)).status == "succeeded"
            with pytest.raises(Refused):
                await engine.approve(execution, "beta", actor="dana")

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        approved = store.events(types=["approved"])
        assert [(e.actor, e.stage, e.data) for e in approved] == [
            ("dana", "beta", {"reason": "looks good", "approval": "qa-lead"})]
        promoted = store.events(types=["promoted"])
        assert [(e.actor, e.stage) for e in promoted] == [("dana", "beta")]
        assert refusals(store) == [
            ("promote", "dana", "execution demo-app-1 is not awaiting promotion (its stage run at beta is waiting)"),
            ("approve", "dana", "the stage has no approval 'cto': qa-lead"),
            ("approve", "dana", "the stage has no approvals"),
            ("approve", "erin", "approval 'qa-lead' was already given"),
            ("approve", "dana", "execution demo-app-1 has ended (succeeded)"),
        ]
        assert all(e.execution == "demo-app-1" for e in store.events(types=["refused"]))
        assert store.verify() is None


def test_resume_wakes_a_waiting_execution_at_once(temporal_server: DevServer, tmp_path: Path) -> None:
    """With a 30 s gate poll, only the resume's wake-up lets the execution through in seconds."""
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> float:
        async with running_engine(temporal_server, store, state, poll_gates_seconds=30) as engine:
            register(store, repo)
            await engine.pause(PIPELINE, actor="dana")
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the paused gate", gate_seen(store, execution, "paused", "paused"))
            resumed = time.monotonic()
            await engine.resume(PIPELINE, actor="dana")
            await wait_for("the deploy", run_status(store, execution, "deploying"), timeout=10)
            took = time.monotonic() - resumed
            assert (await outcome(engine, execution)).status == "succeeded"
            return took

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) < 10


def test_overrides_are_granted_refused_and_revoked(temporal_server: DevServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, tmp_path / "record.txt", stages=2)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        engine = EngineClient(await Client.connect(temporal_server.address), store)
        with pytest.raises(NotFound):
            await engine.override(PIPELINE, "prod", "window", actor="dana", reason="hotfix")
        register(store, repo)
        with pytest.raises(NotFound):
            await engine.override(PIPELINE, "gamma", "window", actor="dana", reason="hotfix")
        granted = await engine.override(PIPELINE, "prod", "window", 600, actor="dana", reason="hotfix")
        assert (granted.expires - granted.granted).total_seconds() == 600
        with pytest.raises(Refused, match="resume the pipeline"):
            await engine.override(PIPELINE, "prod", "paused", actor="dana", reason="hotfix")
        with pytest.raises(Refused, match="needs a reason"):
            await engine.override(PIPELINE, "prod", "alarms", actor="dana", reason=" ")
        await engine.revoke_override(PIPELINE, "prod", "window", actor="erin")
        with pytest.raises(Refused, match="no active override"):
            await engine.revoke_override(PIPELINE, "prod", "window", actor="erin")

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        assert [(e.type, e.actor, e.data["gate"]) for e in store.events(types=["override_granted",
                                                                              "override_revoked"])] == [
            ("override_granted", "dana", "window"), ("override_revoked", "erin", "window")]
        assert [(action, actor) for action, actor, _ in refusals(store)] == [
            ("override", "dana"), ("override", "dana"), ("override", "erin")]
        assert store.overrides() == []
        assert store.verify() is None
