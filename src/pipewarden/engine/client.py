"""The typed facade the fronts use to start and steer executions (step 2: start, approve, promote;
the rest of the client commands come with the server in step 3)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowHandle

from pipewarden.engine.contract import (
    TASK_QUEUE_CONTROL,
    WORKFLOW_EXECUTION,
    ApproveSignal,
    ExecutionInput,
    PromoteSignal,
)
from pipewarden.engine.store import EngineStore
from pipewarden.engine.store.records import ExecutionRecord


async def start_execution(client: Client, store: EngineStore, pipeline: str, repo: str, commit: str, *,
                          trigger: str = "release", pipeline_path: str = "pipeline.yaml",
                          poll_gates_seconds: int = 10, queue_prefix: str = "",
                          now: datetime | None = None) -> tuple[ExecutionRecord, WorkflowHandle[object, object]]:
    """Create the execution `PIPELINE-N` in the store (with its `execution_started` event) and
    start its workflow, whose id is the execution id."""
    record = store.create_execution(pipeline, commit, trigger=trigger, now=now or datetime.now(UTC))
    handle: WorkflowHandle[object, object] = await client.start_workflow(
        WORKFLOW_EXECUTION,
        ExecutionInput(record.id, pipeline, repo, commit, pipeline_path, poll_gates_seconds, queue_prefix),
        id=record.id, task_queue=queue_prefix + TASK_QUEUE_CONTROL)
    return record, handle


async def approve(client: Client, execution: str, stage: str, approval: str, *, actor: str,
                  reason: str | None = None) -> None:
    await client.get_workflow_handle(execution).signal("approve", ApproveSignal(stage, approval, actor, reason))


async def promote(client: Client, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
    await client.get_workflow_handle(execution).signal("promote", PromoteSignal(stage, actor, reason))
