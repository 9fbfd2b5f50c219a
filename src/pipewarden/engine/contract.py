"""What the workflows and the activities exchange: task queues, activity names and the plain
dataclasses passed through Temporal (its default converter reads and writes them as JSON).

Standard library only, so that workflow code imports it inside Temporal's sandbox without
pulling in SQLAlchemy, git or the checker. Times cross as engine.md's text (`format_time`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TASK_QUEUE_CONTROL = "pipewarden-control"
"""Workflows and the store's small activities (gates, statuses, events, rollback plans)."""
TASK_QUEUE_BUILD = "pipewarden-build"
"""Builds: long, so on their own queue; a long build never delays a deploy or a rollback."""
TASK_QUEUE_DEPLOY = "pipewarden-deploy"
"""Hooks and stage tests."""

WORKFLOW_EXECUTION = "ExecutionWorkflow"

# Activity names (the workflow refers to activities by these names only).
A_POLICY = "policy_check"
A_BUILD = "build"
A_HOOK = "run_hook"
A_TESTS = "run_stage_tests"
A_START_STAGE = "start_stage_run"
A_ENTRY_GATES = "entry_gates"
A_STAGE_STATUS = "set_stage_status"
A_EXECUTION_STATUS = "set_execution_status"
A_BAKE_GATE = "bake_gate"
A_BAKE_PASSED = "record_bake_passed"
A_ROLLBACK_PLAN = "plan_rollback"
A_ROLLED_BACK = "record_rolled_back"
A_APPEND = "append_events"


@dataclass
class ExecutionInput:
    """The workflow's input; its id is the execution id (`PIPELINE-N`), made by the store."""

    execution: str
    pipeline: str
    repo: str
    commit: str
    pipeline_path: str = "pipeline.yaml"
    poll_gates_seconds: int = 10
    queue_prefix: str = ""
    """Prefix of the task queues (engines sharing one Temporal, such as tests, keep apart)."""


@dataclass
class ExecutionOutcome:
    status: str
    reason: str | None = None


@dataclass
class GateAnswer:
    gate: str
    result: str
    code: str
    reason: str
    until: str | None = None


@dataclass
class PolicyRequest:
    """The policy gate on the `pipeline_path` of `commit` (before the build: `stage_run` None)."""

    execution: str
    pipeline: str
    repo: str
    commit: str
    pipeline_path: str
    now: str
    stage: str | None = None
    stage_run: int | None = None


@dataclass
class PolicyAnswer:
    gate: GateAnswer
    document: dict[str, Any] | None = None
    """The loader's dict of a valid definition (the workflow builds its view from it)."""


@dataclass
class BuildRequest:
    execution: str
    pipeline: str
    repo: str
    commit: str
    pipeline_path: str
    commands: list[str]
    tests: list[TestSpec]
    artifact_path: str
    timeout_seconds: int


@dataclass
class BuildAnswer:
    ok: bool
    artifact: str | None
    reason: str


@dataclass
class TestSpec:
    __test__ = False  # not a pytest class

    name: str
    command: str
    timeout_seconds: int


@dataclass
class HookRequest:
    execution: str
    pipeline: str
    repo: str
    artifact: str
    commit: str
    stage: str
    target: str
    host: str
    hosts: list[str]
    hook: str
    command: str
    timeout_seconds: int
    production_config: bool
    rollback: bool
    first: bool
    last: bool


@dataclass
class HookAnswer:
    ok: bool
    exit_code: int | None
    timed_out: bool
    log: str | None


@dataclass
class TestsRequest:
    execution: str
    pipeline: str
    repo: str
    artifact: str
    commit: str
    stage: str
    hosts: list[str]
    tests: list[TestSpec]
    production_config: bool


@dataclass
class TestsAnswer:
    ok: bool
    failed: list[str]


@dataclass
class StageStartRequest:
    execution: str
    stage: str
    now: str


@dataclass
class EntryGatesRequest:
    run_id: int
    execution: str
    pipeline: str
    repo: str
    commit: str
    pipeline_path: str
    stage: str
    approvals_required: list[str]
    approvals_given: list[str]
    now: str


@dataclass
class EventSpec:
    """An event for the store to append in the same transaction as a status change; `suffix`
    makes its idempotency key with the workflow and activity ids."""

    type: str
    data: dict[str, Any]
    suffix: str
    target: str | None = None
    host: str | None = None
    actor: str = "engine"


@dataclass
class StageStatusRequest:
    run_id: int
    status: str
    now: str
    reason: str | None = None
    artifact: str | None = None
    events: list[EventSpec] = field(default_factory=list)


@dataclass
class ExecutionStatusRequest:
    execution: str
    status: str
    now: str
    reason: str | None = None


@dataclass
class BakeGateRequest:
    run_id: int
    duration_seconds: int
    deadline_seconds: int | None
    now: str


@dataclass
class BakePassedRequest:
    run_id: int
    targets: list[str]
    now: str


@dataclass
class RollbackPlanRequest:
    pipeline: str
    stage: str
    replacing: str


@dataclass
class RollbackTarget:
    target: str
    hosts: list[str]
    artifact: str | None
    commit: str | None
    document: dict[str, Any] | None
    """The restored artifact's own definition (its hooks and batching), None without one."""


@dataclass
class RollbackPlanAnswer:
    targets: list[RollbackTarget]


@dataclass
class RolledBackRequest:
    pipeline: str
    stage: str
    target: str
    artifact: str
    now: str


@dataclass
class ApproveSignal:
    """`approve ID --stage S [--approval NAME]` (the client has checked it: approval_to_give)."""

    stage: str
    approval: str
    actor: str
    reason: str | None = None


@dataclass
class PromoteSignal:
    """`promote ID --stage S` (this stage's name or the next one's)."""

    stage: str
    actor: str
    reason: str | None = None


@dataclass
class AppendEventsRequest:
    """Events of an execution to append (each keyed by the workflow and activity ids and its suffix)."""

    execution: str
    pipeline: str
    now: str
    stage: str | None
    events: list[EventSpec]
