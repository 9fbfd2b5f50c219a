"""The one wiring place: which workers serve which task queues with which workflows and activities.

Three task queues (contract.py): `pipewarden-control` (the workflows and the store's small
activities), `pipewarden-build` (builds) and `pipewarden-deploy` (hooks and stage tests), so that a
long build never delays a deploy or a rollback. One process runs one worker per queue.

`workflow_failure_exception_types=[Exception]`: an exception raised by workflow code (a sandbox
restriction, a bug) fails the workflow at once instead of retrying its task for ever, which would
leave an execution hanging without a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.contract import TASK_QUEUE_BUILD, TASK_QUEUE_CONTROL, TASK_QUEUE_DEPLOY
from pipewarden.engine.workflows.execution import ExecutionWorkflow


def workers(client: Client, activities: EngineActivities, *, executor: ThreadPoolExecutor,
            task_queue_prefix: str = "") -> list[Worker]:
    """The workers of one engine process (run them together, e.g. `async with` each). Activities
    are synchronous (processes, SQLite) and run on `executor`, which the caller owns and shuts
    down. `task_queue_prefix` separates engines sharing one Temporal (tests)."""
    control: Sequence[Any] = [activities.policy_check, activities.start_stage_run, activities.entry_gates,
                              activities.set_stage_status, activities.append_events, activities.set_execution_status, activities.bake_gate,
                              activities.record_bake_passed, activities.plan_rollback, activities.record_rolled_back]
    return [
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_CONTROL, workflows=[ExecutionWorkflow],
               activities=control, activity_executor=executor, workflow_failure_exception_types=[Exception]),
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_BUILD, activities=[activities.build],
               activity_executor=executor),
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_DEPLOY,
               activities=[activities.run_hook, activities.run_stage_tests], activity_executor=executor),
    ]
