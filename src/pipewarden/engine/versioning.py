"""Upgrades (engine.md "Executions"): executions in flight when pipewarden is upgraded continue
under the new version, and a version that cannot continue them refuses to start and names them.

Temporal continues a workflow by replaying its history through the new code; a change that would
make the new code issue other commands than the history holds is a non-determinism error, and the
workflow would be stuck. So before its worker starts, the server replays the history of every
running workflow of its task queue with this version's workflow code (Temporal's `Replayer`, the
same check the replay tests of recorded histories make), and refuses to start when one fails,
naming it. Workflow code changes therefore go behind `workflow.patched(...)`
(docs/engine.md "Changing workflow code").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from pipewarden.engine.contract import TASK_QUEUE_CONTROL
from pipewarden.engine.workflows.execution import ExecutionWorkflow, RollbackWorkflow

WORKFLOWS: tuple[type, ...] = (ExecutionWorkflow, RollbackWorkflow)


@dataclass(frozen=True, slots=True)
class ReplayProblem:
    workflow_id: str
    error: str


def replayer(workflows: Sequence[type] = WORKFLOWS) -> Replayer:
    # Not `workflow_failure_exception_types=[Exception]` as the worker has it: with it, a
    # non-determinism error fails the replayed workflow instead of its task, and the replay then
    # waits for history that never comes.
    return Replayer(workflows=list(workflows))


async def replay(histories: Sequence[WorkflowHistory], workflows: Sequence[type] = WORKFLOWS) -> list[ReplayProblem]:
    """Replay `histories` through this version's workflow code; the ones that cannot continue."""
    problems = []
    engine = replayer(workflows)
    for history in histories:
        result = await engine.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            problems.append(ReplayProblem(history.workflow_id, str(result.replay_failure)))
    return problems


async def running_histories(client: Client, *, queue_prefix: str = "") -> list[WorkflowHistory]:
    """The histories of the workflows running on this engine's control task queue."""
    query = f"ExecutionStatus = 'Running' AND TaskQueue = '{queue_prefix}{TASK_QUEUE_CONTROL}'"
    histories = []
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        histories.append(await handle.fetch_history())
    return histories


async def cannot_continue(client: Client, *, queue_prefix: str = "") -> list[ReplayProblem]:
    """The running workflows this version's code cannot continue (empty when all can)."""
    return await replay(await running_histories(client, queue_prefix=queue_prefix))
