"""Long waits continue as new (issue 13: "continue-as-new before Temporal's history limit"): an
execution waiting at an approval gate, then awaiting promotion, starts a fresh workflow run each
time its history passes the limit (lowered here to 30 events), carrying its stage run, artifact,
definition and the signals it holds; approve and promote still reach it, and the release ends
exactly as without continue-as-new: every hook once, one `approved`, one `promoted`, no event
twice, the chain intact."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from client_helpers import PIPELINE, gate_seen, lines_of, outcome, register, run_status, running_engine, wait_for
from workflow_helpers import make_repo

from pipewarden.engine.client import EngineClient
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore

APPROVAL = "    approvals: [{name: qa-lead, type: manual}]\n    promotion: manual\n"


async def runs(engine: EngineClient, execution: str) -> int:
    """How many workflow runs the execution has had."""
    return len([entry async for entry in engine.temporal.list_workflows(f"WorkflowId = '{execution}'")])


async def resumed_phase(engine: EngineClient, execution: str) -> str | None:
    """The phase the execution's latest run was resumed at (None: not a continued run)."""
    history = await engine.temporal.get_workflow_handle(execution).fetch_history()
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    resume = json.loads(payload.data).get("resume")
    return None if resume is None else str(resume["phase"])


def test_waits_continue_as_new_and_the_release_goes_on(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=2, beta_extra=APPROVAL)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            engine.history_limit = 30
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the approval gate", gate_seen(store, execution, "approval", "approval_missing"))
            # Polling the gates every second grows the history past 30 events in a few seconds.
            deadline = asyncio.get_running_loop().time() + 60
            while await runs(engine, execution) < 3:
                assert asyncio.get_running_loop().time() < deadline, "no continue-as-new while waiting"
                await asyncio.sleep(0.5)
            assert await engine.approve(execution, "beta", actor="dana", reason="ok") == "qa-lead"
            await wait_for("awaiting_promotion", run_status(store, execution, "awaiting_promotion", "beta"), 60)
            # The deploy, tests and bake made the history long: awaiting promotion continues at once
            # (perhaps already: the latest run is then one resumed awaiting promotion).
            deadline = asyncio.get_running_loop().time() + 30
            while await resumed_phase(engine, execution) != "promotion":
                assert asyncio.get_running_loop().time() < deadline, "no continue-as-new awaiting promotion"
                await asyncio.sleep(0.2)
            await engine.promote(execution, "beta", actor="dana")
            assert (await outcome(engine, execution)).status == "succeeded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        events = store.events()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert [e.type for e in events].count("approved") == 1
        assert [e.type for e in events].count("promoted") == 1
        assert [e.type for e in events].count("stage_started") == 2
        assert [e.type for e in events].count("execution_finished") == 1
        hooks = Counter((e.stage, e.host, e.data["hook"]) for e in events if e.type == "hook")
        assert len(hooks) == 16 and set(hooks.values()) == {1}
        assert Counter(lines_of(record)).most_common(1)[0][1] == 1
        runs_of_beta = [r for r in store.stage_runs(execution="demo-app-1") if r.stage == "beta"]
        assert [(r.attempt, str(r.status)) for r in runs_of_beta] == [(1, "succeeded")]
        assert store.verify() is None
