"""Workflow code stays able to continue executions already in flight (engine.md "Upgrades").

The histories under `histories/` were recorded from real executions (`histories/record.py`: an
approval and a manual promotion, an automatic rollback, a cancel at an entry gate, a manual
rollback). Every one must replay through the current workflow code without a non-determinism
error; a change that breaks one must be guarded with `workflow.patched`. The server makes the same
check on the live histories before its worker starts, and refuses to start naming what it cannot
continue."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from pipewarden.engine.contract import TASK_QUEUE_CONTROL
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.server import refuse_unreplayable
from pipewarden.engine.versioning import replay
from pipewarden.errors import ConfigError

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def history(path: Path) -> WorkflowHistory:
    text = path.read_text()
    return WorkflowHistory.from_json(path.stem, text)


def test_histories_were_recorded() -> None:
    assert {path.stem for path in HISTORIES} >= {"approved_and_promoted", "automatic_rollback-2",
                                                  "cancelled_at_approval", "manual_rollback"}


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_recorded_history_replays_with_the_current_code(path: Path) -> None:
    problems = asyncio.run(replay([history(path)]))
    assert problems == [], problems[0].error if problems else ""


@workflow.defn(name="ExecutionWorkflow", sandboxed=False)
class ChangedExecutionWorkflow:
    """A "new version" that does something else at the start than the recorded code did."""

    @workflow.run
    async def run(self, _: Any) -> str:
        await workflow.sleep(timedelta(hours=1))
        return "changed"


def test_a_changed_workflow_cannot_replay_and_is_named() -> None:
    recorded = history(HISTORIES[0])
    problems = asyncio.run(replay([recorded], workflows=[ChangedExecutionWorkflow]))
    assert [problem.workflow_id for problem in problems] == [HISTORIES[0].stem]
    assert "nondetermin" in problems[0].error.lower()


def test_the_server_refuses_to_start_over_executions_it_cannot_continue(temporal_server: DevServer) -> None:
    """An execution started by "another version" (a different workflow body under the same name) is
    still running on the engine's task queue: the current code cannot replay it, so the check
    before the worker starts names it; with nothing in flight the check passes."""

    async def scenario() -> None:
        client = await Client.connect(temporal_server.address)
        prefix = f"replay-{uuid.uuid4().hex[:8]}-"
        # Nothing running on this engine's queue yet: no refusal.
        await refuse_unreplayable(client, prefix)
        async with Worker(client, task_queue=prefix + TASK_QUEUE_CONTROL, workflows=[ChangedExecutionWorkflow]):
            handle = await client.start_workflow("ExecutionWorkflow", {"execution": "old-1"}, id=f"{prefix}old-1",
                                                 task_queue=prefix + TASK_QUEUE_CONTROL)
            # Wait until the old version has written its first workflow task (its timer).
            for _ in range(100):
                events = [event async for event in handle.fetch_history_events()]
                if any(event.HasField("timer_started_event_attributes") for event in events):
                    break
                await asyncio.sleep(0.05)
        try:
            with pytest.raises(ConfigError) as refused:
                await refuse_unreplayable(client, prefix)
            assert f"{prefix}old-1" in str(refused.value)
            assert "cannot continue 1 execution(s) in flight" in str(refused.value)
        finally:
            await handle.terminate("test done")
        await refuse_unreplayable(client, prefix)  # terminated: nothing in flight any more

    asyncio.run(scenario())
