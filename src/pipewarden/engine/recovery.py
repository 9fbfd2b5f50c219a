"""Workflow recovery: every execution the store says is `running` gets its workflow.

An execution is made in two steps: the store's insert (`create_execution`, with its
`execution_started` event), then the start of its workflow in Temporal. A server that dies
between the two leaves an execution `running` that nothing runs. At start-up the server calls
`resume_missing_workflows`, which starts the workflow of each such execution from the store's
record of it (the pipeline's stored source gives the repository and the file).

A duplicate start is impossible: the start uses the execution id as workflow id with the id-reuse
policy REJECT_DUPLICATE (no start when a workflow of that id ever existed, running or closed) and
the conflict policy FAIL, so Temporal itself refuses a second workflow, even when two processes
recover at once or the original start lands late.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from pipewarden.engine.contract import TASK_QUEUE_CONTROL, WORKFLOW_EXECUTION, ExecutionInput
from pipewarden.engine.store import EngineStore
from pipewarden.engine.store.records import ExecutionRecord

log = logging.getLogger(__name__)

DEFAULT_PIPELINE_PATH = "pipeline.yaml"


async def resume_missing_workflows(client: Client, store: EngineStore, *, queue_prefix: str = "",
                                   poll_gates_seconds: int = 10) -> list[str]:
    """Start the workflow of every `running` execution that has none in Temporal; the ids of the
    workflows started, oldest execution first.

    `queue_prefix` and `poll_gates_seconds` are those the engine starts every execution with
    (`ExecutionInput`). An execution whose workflow exists is left alone; when that workflow has
    closed while the store still says `running` (a workflow that failed on a bug), it is logged,
    not started again: its history is the place to look. An execution whose pipeline has no
    stored source (repository unknown) and a start that fails otherwise (Temporal unreachable)
    are logged and skipped; the others are still started.
    """
    started: list[str] = []
    for execution in await asyncio.to_thread(store.running_executions):
        record = await asyncio.to_thread(store.pipeline, execution.pipeline)
        if record is None or record.repo is None:
            log.warning("execution %s is running but pipeline %s has no stored repository; not resumed",
                        execution.id, execution.pipeline)
            continue
        request = ExecutionInput(execution.id, execution.pipeline, record.repo, execution.commit,
                                 record.path or DEFAULT_PIPELINE_PATH, poll_gates_seconds, queue_prefix)
        try:
            await client.start_workflow(
                WORKFLOW_EXECUTION, request, id=execution.id, task_queue=queue_prefix + TASK_QUEUE_CONTROL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
        except WorkflowAlreadyStartedError:
            await _note_closed(client, execution)
            continue
        except RPCError as error:
            log.error("the workflow of execution %s could not be started: %s", execution.id, error)
            continue
        log.info("started the missing workflow of execution %s (%s at %s)", execution.id, execution.pipeline,
                 execution.commit)
        started.append(execution.id)
    return started


async def _note_closed(client: Client, execution: ExecutionRecord) -> None:
    """Log a workflow that has closed although its execution is still `running` in the store."""
    try:
        description = await client.get_workflow_handle(execution.id).describe()
    except RPCError:
        return
    if description.status not in (None, WorkflowExecutionStatus.RUNNING):
        log.warning("the workflow of execution %s is %s but the store says running; not started again",
                    execution.id, description.status.name)
