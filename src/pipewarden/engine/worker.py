"""The one wiring place: which workers serve which task queues with which workflows and activities.

Four task queues (contract.py): `pipewarden-control` (the workflows and the store's small
activities), `pipewarden-build` (builds), `pipewarden-deploy` (hooks, stage tests, rollbacks) and
`pipewarden-bake` (bakes, each one activity for its whole length), so that a long build never
delays a deploy or a rollback and bakes never take the slots of short activities. One process runs
one worker per queue.

`workflow_failure_exception_types=[Exception]`: an exception raised by workflow code (a sandbox
restriction, a bug) fails the workflow at once instead of retrying its task for ever, which would
leave an execution hanging without a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.contract import TASK_QUEUE_BAKE, TASK_QUEUE_BUILD, TASK_QUEUE_CONTROL, TASK_QUEUE_DEPLOY
from pipewarden.engine.workflows.execution import ExecutionWorkflow, RollbackWorkflow

BAKE_SLOTS = 10_000
"""Bakes one process runs at once (each holds its slot for the whole bake)."""
HEARTBEAT_THROTTLE = timedelta(seconds=5)
"""How long the SDK may hold back an activity's heartbeats (its default is 0.8 of the heartbeat
timeout, 24 s here). A `cancel` reaches a running build or stage test only with the answer to a
heartbeat, so this bounds how late a cancelled build is stopped (with the 5 s heartbeat period)."""


def workers(client: Client, activities: EngineActivities, *, executor: ThreadPoolExecutor,
            deploy_executor: ThreadPoolExecutor | None = None, task_queue_prefix: str = "",
            heartbeat_throttle: timedelta = HEARTBEAT_THROTTLE) -> list[Worker]:
    """The workers of one engine process (run them together, e.g. `async with` each). Activities
    are synchronous (processes, SQLite) and run on `executor`, the deploy queue's on
    `deploy_executor` when given (as many at once as it has threads: a deploy holds its thread
    while its hooks run); the caller owns both and shuts them down. The bakes are async (no
    thread). `task_queue_prefix` separates engines sharing one Temporal (tests)."""
    deploys = deploy_executor or executor
    control: Sequence[Any] = [
        activities.policy_check, activities.start_stage_run, activities.entry_gates, activities.set_stage_status,
        activities.append_events, activities.set_execution_status, activities.bake_gate,
        activities.record_bake_passed, activities.plan_rollback, activities.record_rolled_back,
        activities.stage_rivals, activities.claim_stage, activities.record_retry, activities.rollback_blockers,
        activities.pause_pipeline, activities.bake_gates, activities.alarm_tripwire, activities.halt_deploy,
        activities.enter_stage, activities.bake_round]
    return [
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_CONTROL,
               workflows=[ExecutionWorkflow, RollbackWorkflow], activities=control, activity_executor=executor,
               workflow_failure_exception_types=[Exception]),
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_BUILD, activities=[activities.build],
               activity_executor=executor, max_heartbeat_throttle_interval=heartbeat_throttle,
               default_heartbeat_throttle_interval=heartbeat_throttle),
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_DEPLOY,
               activities=[activities.run_deploy, activities.roll_back_stage, activities.run_hook,
                           activities.run_stage_tests],
               activity_executor=deploys,
               max_heartbeat_throttle_interval=heartbeat_throttle,
               default_heartbeat_throttle_interval=heartbeat_throttle),
        # Bakes are async activities that wait between rounds: many at once cost no thread.
        Worker(client, task_queue=task_queue_prefix + TASK_QUEUE_BAKE, activities=[activities.bake_stage],
               max_concurrent_activities=BAKE_SLOTS, max_heartbeat_throttle_interval=heartbeat_throttle,
               default_heartbeat_throttle_interval=heartbeat_throttle),
    ]
