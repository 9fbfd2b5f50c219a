"""`retry` and a manual `rollback` on the real dev server.

Retry: with `rollback: manual` a failed stage leaves the execution `failed`; `retry` starts a new
workflow run for the same execution id, from the failed stage's entry gates (the approval given
before still counts); refused while a newer execution has deployed that stage.

Manual rollback: cancels the execution occupying the stage (its running hook finishes), redeploys
the last good artifact with `PIPEWARDEN_ROLLBACK=1`, records `rolled_back` on the execution that
deployed the replaced artifact even when it had succeeded, and pauses the pipeline unless asked
not to; a `--to` that cannot be restored is refused by the rollback before it touches anything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from client_helpers import (
    PIPELINE,
    blocking_validate,
    gate_seen,
    lines_of,
    outcome,
    refusals,
    register,
    running_engine,
    signalled,
    wait_for,
)
from workflow_helpers import git, make_repo, write

from pipewarden.engine.client import EngineClient, rollback_workflow_id
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.domain.errors import InvalidValue, NotFound, Refused
from pipewarden.engine.store import EngineStore

HOSTS = ["127.0.0.1:9301", "127.0.0.1:9302"]


def test_retry_after_a_failed_stage_with_rollback_manual(temporal_server: DevServer, tmp_path: Path) -> None:
    record, fixed = tmp_path / "record.txt", tmp_path / "fixed"
    extra = "    approvals: [{name: qa-lead, type: manual}]\n"
    repo = make_repo(tmp_path, record, stages=2, beta_extra=extra)
    write(repo / "pipeline.yaml", (repo / "pipeline.yaml").read_text().replace("rollback: automatic",
                                                                               "rollback: manual", 1))
    validate = repo / "hooks" / "validate.sh"
    write(validate, validate.read_text() + f"test -f {fixed}\n", executable=True)
    git(repo, "commit", "-q", "-am", "validate fails until fixed; beta rolls back by hand")
    state = tmp_path / "state"

    async def released_and_failed(engine: EngineClient, store: EngineStore) -> str:
        execution = (await engine.release(PIPELINE, actor="dana")).id
        await wait_for("the approval gate", gate_seen(store, execution, "approval", "approval_missing"))
        await engine.approve(execution, "beta", actor="dana")
        assert (await outcome(engine, execution)).status == "failed"
        return execution

    async def scenario(store: EngineStore) -> str:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            first = await released_and_failed(engine, store)
            second = await released_and_failed(engine, store)
            with pytest.raises(Refused, match="newer execution demo-app-2 has deployed beta"):
                await engine.retry(first, "beta", actor="dana")
            with pytest.raises(Refused, match="has not failed at prod"):
                await engine.retry(second, "prod", actor="dana")
            fixed.touch()
            await engine.retry(second, "beta", actor="erin", reason="disk cleaned")
            return (await outcome(engine, second)).status

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == "succeeded"
        assert [(r.stage, r.attempt, r.status) for r in store.stage_runs(execution="demo-app-2")] == [
            ("beta", 1, "failed"), ("beta", 2, "succeeded"), ("prod", 1, "succeeded")]
        events = store.events(execution="demo-app-2")
        retried = [(e.stage, e.actor, e.data) for e in events if e.type == "retried"]
        assert retried == [("beta", "erin", {"reason": "disk cleaned"})]
        finished = [e.data["status"] for e in events if e.type == "execution_finished"]
        assert finished == ["failed", "succeeded"]
        approvals = [e.data["result"] for e in events if e.type == "gate" and e.data["gate"] == "approval"]
        assert approvals == ["wait", "pass", "pass"]  # the retried run needed no new approval
        assert len([e for e in events if e.type == "approved"]) == 1
        assert [e.type for e in events].count("build_started") == 1  # the retry built nothing
        assert [(a, actor) for a, actor, _ in refusals(store)] == [("retry", "dana"), ("retry", "dana")]
        assert store.verify() is None


def test_manual_rollback_of_the_occupant_and_of_a_succeeded_execution(temporal_server: DevServer,
                                                                      tmp_path: Path) -> None:
    record, block, go = tmp_path / "record.txt", tmp_path / "block", tmp_path / "go"
    repo = make_repo(tmp_path, record, stages=1)
    blocking_validate(repo, record, block, go)
    git(repo, "commit", "-q", "-am", "v1: validate can be held")
    v1 = git(repo, "rev-parse", "HEAD")
    commits = [v1]
    for version in ("v2", "v3"):
        write(repo / "app.txt", f"{version}\n")
        git(repo, "commit", "-q", "-am", version)
        commits.append(git(repo, "rev-parse", "HEAD"))
    a1, a2, a3 = (commit[:12] for commit in commits)
    state = tmp_path / "state"

    async def rolled_back(engine: EngineClient, ident: str) -> Any:
        result: Any = await asyncio.wait_for(engine.temporal.get_workflow_handle(ident).result(), 60)
        return result["status"] if isinstance(result, dict) else result.status

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            with pytest.raises(Refused, match="nothing has been deployed"):
                await engine.rollback(PIPELINE, "beta", actor="dana")
            assert (await outcome(engine, (await engine.release(PIPELINE, a1, actor="dana")).id)).status == "succeeded"
            block.touch()
            second = (await engine.release(PIPELINE, a2, actor="dana")).id
            await wait_for("v2's first validate", lambda: any(f"validate {a2}" in line for line in lines_of(record)))
            assert await engine.rollback(PIPELINE, "beta", actor="dana", reason="v2 is slow") == a2
            ident = rollback_workflow_id(PIPELINE, "beta", second)
            assert ident == "demo-app-rollback-beta-2"
            await wait_for("the pause", lambda: store.pipeline(PIPELINE).paused)  # type: ignore[union-attr]
            while not await signalled(engine, second, "cancel"):  # the rollback cancels the occupant
                await asyncio.sleep(0.05)
            assert store.execution(second).status == "running"  # type: ignore[union-attr]  # its hook still runs
            go.touch()
            assert await rolled_back(engine, ident) == "rolled_back"
            assert (await outcome(engine, second)).status == "cancelled"  # the run; the store says more
            with pytest.raises(Refused, match="already rolled back"):
                await engine.rollback(PIPELINE, "beta", actor="dana")
            with pytest.raises(InvalidValue):
                await engine.rollback(PIPELINE, "beta", to="v1", actor="dana")
            with pytest.raises(NotFound):
                await engine.rollback(PIPELINE, "gamma", actor="dana")
            block.unlink()
            await engine.resume(PIPELINE, actor="dana")
            third = (await engine.release(PIPELINE, a3, actor="dana")).id
            assert (await outcome(engine, third)).status == "succeeded"
            assert await engine.rollback(PIPELINE, "beta", to="0" * 12, actor="dana") == a3
            ident = rollback_workflow_id(PIPELINE, "beta", third)
            assert await rolled_back(engine, ident) == "refused"
            assert not store.pipeline(PIPELINE).paused  # type: ignore[union-attr]  # refused before the pause
            await engine.rollback(PIPELINE, "beta", pause=False, actor="erin")
            assert await rolled_back(engine, ident) == "rolled_back"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        lines = lines_of(record)
        v2_lines = [line for line in lines if a2 in line]
        assert [line.split()[2:4] for line in v2_lines] == [
            [HOSTS[0], hook] for hook in ("stop", "install", "start", "validate")]  # nothing new after the cancel
        rollbacks = [line.split()[2:5] for line in lines if line.endswith("rollback=1")]
        assert rollbacks == [[HOSTS[0], hook, a1] for hook in ("stop", "install", "start", "validate")] + [
            [host, hook, a1] for host in HOSTS for hook in ("stop", "install", "start", "validate")]
        assert {h.host: (h.artifact, h.state) for h in store.hosts(PIPELINE).values()} == {
            host: (a1, "ok") for host in HOSTS}
        for execution, actor in (("demo-app-2", "dana"), ("demo-app-3", "erin")):
            events = store.events(execution=execution)
            started = [(e.actor, e.data) for e in events if e.type == "rollback_started"]
            assert started == [(actor, {"trigger": "manual", "to": {"beta-cell": a1}})]
            assert store.execution(execution).status == "rolled_back"  # type: ignore[union-attr]
            assert [r.status for r in store.stage_runs(execution=execution)] == ["rolled_back"]
        finished = [e.data["status"] for e in store.events(execution="demo-app-3", types=["execution_finished"])]
        assert finished == ["succeeded", "rolled_back"]  # recorded on it even though it had succeeded
        cancelled = store.events(execution="demo-app-2", types=["cancelled"])
        assert [(e.actor, e.data["reason"]) for e in cancelled] == [("dana", "rollback of beta: v2 is slow")]
        assert [(e.type, e.actor) for e in store.events(types=["paused", "resumed"])] == [
            ("paused", "dana"), ("resumed", "dana")]
        refused = refusals(store)
        assert [(action, actor) for action, actor, _ in refused] == [("rollback", "dana")] * 3
        assert "stored content of 000000000000" in refused[-1][2]
        assert store.verify() is None
