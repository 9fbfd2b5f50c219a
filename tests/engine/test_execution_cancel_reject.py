"""`cancel` and `reject` on the real dev server: a cancel during a hook lets the hook finish and
starts nothing new (no rollback); a cancel during the build stops it (its process group killed);
a reject at the entry or awaiting promotion ends the execution `failed`; each refusal is a
`refused` event."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from client_helpers import (
    PIPELINE,
    blocking_validate,
    gate_seen,
    lines_of,
    outcome,
    refusals,
    register,
    run_status,
    running_engine,
    wait_for,
)
from workflow_helpers import git, make_repo

from pipewarden.engine.activities import engine as engine_activities
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.store import EngineStore


def test_cancel_during_a_hook_lets_it_finish_and_starts_nothing_new(temporal_server: DevServer,
                                                                    tmp_path: Path) -> None:
    record, block, go = tmp_path / "record.txt", tmp_path / "block", tmp_path / "go"
    repo = make_repo(tmp_path, record, stages=1)
    blocking_validate(repo, record, block, go)
    git(repo, "commit", "-q", "-am", "validate can be held")
    state = tmp_path / "state"
    block.touch()

    async def scenario(store: EngineStore) -> str:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the first validate hook", lambda: any("validate" in line for line in lines_of(record)))
            await engine.cancel(execution, actor="dana", reason="wrong day")
            await asyncio.sleep(1)  # the workflow has the signal; the hook still runs
            assert store.execution(execution).status == "running"  # type: ignore[union-attr]
            go.touch()
            result = await outcome(engine, execution)
            with pytest.raises(Refused):
                await engine.cancel(execution, actor="erin")
            return result.status

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == "cancelled"
        hooks = [line.split()[2:4] for line in lines_of(record)]
        # the first batch's host finished its validate; the second batch never started
        assert hooks == [["127.0.0.1:9301", hook] for hook in ("stop", "install", "start", "validate")]
        events = store.events(execution="demo-app-1")
        assert "rollback_started" not in [e.type for e in events]
        cancelled = [(e.stage, e.actor, e.data) for e in events if e.type == "cancelled"]
        assert cancelled == [("beta", "dana", {"reason": "wrong day"})]
        hook = [e for e in events if e.type == "hook"][-1]
        assert (hook.data["hook"], hook.data["exit_code"]) == ("validate", 0)
        (run,) = store.stage_runs(execution="demo-app-1")
        assert (run.status, run.reason) == ("cancelled", "cancelled by dana: wrong day")
        assert store.execution("demo-app-1").status == "cancelled"  # type: ignore[union-attr]
        assert refusals(store) == [("cancel", "erin", "execution demo-app-1 has ended (cancelled)")]
        assert store.verify() is None


def alive(pid: int) -> bool:
    """Whether the process runs (a killed one whose parent died too may linger as a zombie until
    the container's init reaps it: that one is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_cancel_stops_a_running_build(temporal_server: DevServer, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The cancel reaches the activity with a heartbeat's answer: heartbeat often in this test.
    monkeypatch.setattr(engine_activities, "HEARTBEAT_SECONDS", 0.2)
    pid = tmp_path / "build.pid"
    repo = make_repo(tmp_path, tmp_path / "record.txt", stages=1, build=f"echo $$ > {pid}; exec sleep 60")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> str:
        async with running_engine(temporal_server, store, state, heartbeat_throttle=timedelta(seconds=0.5)) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the build to run", lambda: pid.exists() and pid.read_text().strip())
            await engine.cancel(execution, actor="dana")
            return (await asyncio.wait_for(outcome(engine, execution), 20)).status

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == "cancelled"
        assert not alive(int(pid.read_text()))
        events = store.events(execution="demo-app-1")
        assert [e.type for e in events] == ["execution_started", "gate", "build_started", "build_finished",
                                            "cancelled", "execution_finished"]
        assert events[3].data["result"] == "interrupted"
        assert (events[4].stage, events[4].data) == (None, {"reason": None})
        assert store.verify() is None


def test_reject_at_the_entry_and_while_awaiting_promotion(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    extra = "    approvals: [{name: qa-lead, type: manual}]\n    promotion: manual\n"
    repo = make_repo(tmp_path, record, stages=2, beta_extra=extra)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> list[str]:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            first = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the approval gate", gate_seen(store, first, "approval", "approval_missing"))
            with pytest.raises(Refused):
                await engine.reject(first, "prod", actor="dana")  # not at prod's entry
            await engine.reject(first, "beta", actor="dana", reason="not this one")
            statuses = [(await outcome(engine, first)).status]
            with pytest.raises(Refused):
                await engine.reject(first, "beta", actor="dana")
            second = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the approval gate", gate_seen(store, second, "approval", "approval_missing"))
            await engine.approve(second, "beta", actor="dana")
            await wait_for("awaiting_promotion", run_status(store, second, "awaiting_promotion", "beta"))
            await engine.reject(second, "beta", actor="erin")
            statuses.append((await outcome(engine, second)).status)
            return statuses

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == ["failed", "failed"]
        rejected = [(e.execution, e.stage, e.actor, e.data) for e in store.events(types=["rejected"])]
        assert rejected == [("demo-app-1", "beta", "dana", {"reason": "not this one", "approval": None}),
                            ("demo-app-2", "beta", "erin", {"reason": None, "approval": None})]
        assert store.execution("demo-app-1").reason == "beta: rejected by dana: not this one"  # type: ignore[union-attr]
        assert [(r.stage, r.status, r.deployed) for r in store.stage_runs(execution="demo-app-1")] == [
            ("beta", "failed", False)]
        assert [(r.stage, r.status) for r in store.stage_runs(execution="demo-app-2")] == [("beta", "failed")]
        assert [(action, actor) for action, actor, _ in refusals(store)] == [("reject", "dana"), ("reject", "dana")]
        assert not any(line.startswith("prod") for line in lines_of(record))
        assert store.verify() is None
