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
WORKFLOW_ROLLBACK = "RollbackWorkflow"
"""A manual `rollback` (id `PIPELINE-rollback-STAGE-N`, N the number of the execution whose
artifact it replaces)."""

# Signals of ExecutionWorkflow (the client checks each against the store before sending it).
SIGNAL_APPROVE = "approve"
SIGNAL_PROMOTE = "promote"
SIGNAL_REJECT = "reject"
SIGNAL_CANCEL = "cancel"
SIGNAL_WAKE = "wake"
"""No argument: something its gates or its supersede check read has changed (pause, resume, an
override, a newer execution at its stage): evaluate them again at once."""

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
A_RIVALS = "stage_rivals"
A_CLAIM = "claim_stage"
A_RETRIED = "record_retry"
A_BLOCKERS = "rollback_blockers"
A_PAUSE = "pause_pipeline"
A_BAKE_GATES = "bake_gates"
"""The bake's gates in one round (issue 14): bake_time, datapoints, the alarms tripwire, the
deadline over the bake as a whole. Histories from before it call A_BAKE_GATE (bake_time only)."""
A_TRIPWIRE = "alarm_tripwire"
"""The alarms tripwire during a stage's deploy and tests (issue 14)."""
A_DEPLOY = "run_deploy"
"""A stage's whole deploy (or a rollback's) in one activity on `pipewarden-deploy`: every target,
batch, host and hook, each hook still begun and finished in the store under its own key.
Histories from before it call A_HOOK once per hook."""
A_HALT = "halt_deploy"
"""Tell a running A_DEPLOY to start no new hook (`cancel`, the alarms tripwire)."""


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
    retry: RetryInput | None = None
    """Set when this run of the workflow is a `retry` of a failed stage (a new workflow run for
    the same execution id: the failed one has ended)."""
    resume: ResumeInput | None = None
    """Set when this run continues an earlier one as new (its history had grown long): it picks
    up the stage run waiting at its entry or awaiting promotion."""
    history_limit: int = 10_000
    """Continue as new once the run's history holds this many events (or Temporal suggests it),
    at a wait: far below Temporal's limit of about 51,200, and a short history replays fast."""


@dataclass
class RetryInput:
    """`retry ID --stage S`: start again at `stage` with the artifact already built (the approvals
    given before still count: the entry gates read the `approved` events of the store)."""

    stage: str
    artifact: str
    actor: str
    reason: str | None = None


@dataclass
class ResumeInput:
    """What a run continued as new needs to pick up where the earlier run was: the stage run
    (`phase` `entry`: waiting at its entry gates; `promotion`: awaiting promotion), the artifact,
    the definition followed (the loader's dict of the commit's `pipeline.yaml`), and the signals
    the earlier run had received and not yet acted on."""

    stage: str
    run_id: int
    artifact: str
    phase: str
    document: dict[str, Any]
    approvals: dict[str, list[str]] = field(default_factory=dict)
    promotions: dict[str, PromoteSignal] = field(default_factory=dict)
    rejects: dict[str, RejectSignal] = field(default_factory=dict)
    cancel: CancelSignal | None = None
    woken: list[list[str]] = field(default_factory=list)
    """(stage, execution) pairs already woken, so they are not woken again."""


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
class HookSpec:
    phase: str
    command: str


@dataclass
class DeployTarget:
    """One target's part of a deploy or a rollback: its batches (hosts, in order; the hosts of a
    batch in parallel) and the artifact, commit and hooks they get (a rollback restores each
    target's own last good artifact, with that artifact's own hooks)."""

    target: str
    batches: list[list[str]]
    hooks: list[HookSpec]
    artifact: str
    commit: str
    timeout_seconds: int
    production_config: bool


@dataclass
class DeployRequest:
    """A_DEPLOY: targets in parallel, batches in order, hooks in order on each host; after the
    first failed host, or once `halt_key` is halted in the store, no new batch and no new hook
    starts anywhere (hooks already running finish)."""

    execution: str
    pipeline: str
    repo: str
    stage: str
    hosts: list[str]
    targets: list[DeployTarget]
    rollback: bool
    halt_key: str


@dataclass
class DeployAnswer:
    ok: bool
    """Every host passed every hook (and nothing halted the deploy)."""
    failure: str | None = None
    """What made the first host fail, for the stage's reason."""
    halted: bool = False
    """The deploy stopped starting hooks because `halt_key` was halted."""


@dataclass
class HaltRequest:
    key: str
    reason: str
    now: str


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
    poll_gates_seconds: int = 10
    """How old a stored alarm state may be (alarms gate); absent in requests recorded before it."""


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
    unless_rolling_back: bool = False
    """Write nothing when the run is `rolling_back` or has ended (a bake's own rollback got there
    first, patch `bake-rolls-back`): A_STAGE_STATUS then answers the status it found."""


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
    to: str | None = None
    """`rollback --to ARTIFACT` (checked: not the replaced one, intact, not blocklisted)."""
    now: str | None = None
    """The workflow's clock, at which the blocklist (and an override of it) is judged; None: the
    activity's clock (requests recorded before it existed)."""


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
    refused: str | None = None
    """Why `to` cannot be restored (the plan is empty then)."""
    stage_hosts: list[str] = field(default_factory=list)
    """Every host of the stage in the replaced artifact's definition (`PIPEWARDEN_HOSTS`)."""


@dataclass
class RolledBackRequest:
    pipeline: str
    stage: str
    target: str
    artifact: str
    now: str


@dataclass
class ApproveSignal:
    """`approve ID --stage S [--approval NAME]`: the client has checked it (approval_to_give)
    and written its `approved` event; the workflow only counts it."""

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


@dataclass
class RejectSignal:
    """`reject ID --stage S` (the execution waits at S's entry or awaits promotion there)."""

    stage: str
    actor: str
    reason: str | None = None


@dataclass
class CancelSignal:
    """`cancel ID`, or the cancel a manual rollback sends to the executions it stops."""

    actor: str
    reason: str | None = None


@dataclass
class RivalsRequest:
    """Who else is at the stage of this stage run (supersede, engine.md "One stage, one occupant")."""

    run_id: int


@dataclass
class RivalsAnswer:
    newer_deployed: str | None
    """A newer execution (by N) that has deployed this stage: this one must never deploy it."""
    newer_waiting: str | None
    """A newer execution waiting at the entry: this one, if waiting there, is superseded."""
    older_waiting: list[str]
    """Older executions waiting at the entry (superseded by this one: wake them to see it)."""
    older_awaiting: list[str]
    """Older executions awaiting promotion at the stage (superseded once this one deploys it)."""


@dataclass
class ClaimRequest:
    """Move stage run `run_id` to `status` (`deploying` from `waiting`, or `rolling_back`) if it
    may take the stage now, in one store transaction (EngineStore.claim_stage), with `events`."""

    run_id: int
    status: str
    now: str
    artifact: str | None = None
    reason: str | None = None
    events: list[EventSpec] = field(default_factory=list)


@dataclass
class ClaimAnswer:
    result: str
    """`claimed`, `busy` (another execution occupies the stage) or `superseded`."""
    by: str | None
    older_awaiting: list[str]


@dataclass
class RetryRecordRequest:
    """The first step of a retry run: the execution `running` again and its `retried` event."""

    execution: str
    stage: str
    actor: str
    reason: str | None
    now: str


@dataclass
class RollbackInput:
    """A manual rollback of `stage` away from `replacing` (deployed by stage run `run_id` of
    `deployer`). `cancel` lists the executions to stop first (the occupant, the deployer)."""

    pipeline: str
    repo: str
    stage: str
    deployer: str
    run_id: int
    replacing: str
    to: str | None
    pause: bool
    cancel: list[str]
    actor: str
    reason: str | None = None
    poll_gates_seconds: int = 10
    queue_prefix: str = ""


@dataclass
class BlockersRequest:
    """What a manual rollback still waits for: these executions `running`, or a stage run of
    another execution occupying the stage."""

    pipeline: str
    stage: str
    executions: list[str]
    deployer: str
    run_id: int


@dataclass
class BlockersAnswer:
    executions: list[str]
    """Executions still running (to cancel, then wait for) or occupying the stage."""
    run_status: str
    """The status of the deployer's stage run now (an automatic rollback may have taken it)."""


@dataclass
class PauseRequest:
    pipeline: str
    actor: str
    reason: str | None
    now: str


@dataclass
class BakeGatesRequest:
    """One round of the bake's gates of stage run `run_id` (the definition of `artifact`'s own
    commit says which): `deploy_finished` starts the datapoints' counting window."""

    run_id: int
    execution: str
    pipeline: str
    repo: str
    commit: str
    artifact: str
    stage: str
    deploy_finished: str
    now: str
    poll_gates_seconds: int = 10


@dataclass
class TripwireRequest:
    """The stage's alarms as a tripwire (a firing alarm fails the stage), during its deploy."""

    run_id: int
    pipeline: str
    commit: str
    stage: str
    now: str
    poll_gates_seconds: int = 10
    halt_key: str | None = None
    """The running deploy's halt key (A_DEPLOY): a `fail` halts it before the gate event is
    written, so no hook starts once the tripwire is seen to fire."""


def halt_key(execution: str, run_id: int, *, rollback: bool) -> str:
    """The key that halts the deploy (or the rollback) of stage run `run_id` (A_HALT)."""
    return f"{execution}/{run_id}/{'rollback' if rollback else 'deploy'}"


A_ENTER = "enter_stage"
"""A stage's entry in one activity: start the stage run (first round), ask who else is at the
stage, judge and record the entry gates, and, when every gate passes, claim the stage. Histories
from before it call A_START_STAGE, A_RIVALS, A_ENTRY_GATES and A_CLAIM one by one."""
A_BAKE_ROUND = "bake_round"
"""A round of the bake in one activity: `baking` with its `bake_started` event (first round), the
bake's gates, and when all pass the bake recorded as passed and the run moved on with its
`bake_finished` event. Histories from before it call A_STAGE_STATUS, A_BAKE_GATES and
A_BAKE_PASSED one by one."""


@dataclass
class StageEntryRequest:
    """A_ENTER. `gates.run_id` is the stage run, or 0 with `start` (start it first)."""

    gates: EntryGatesRequest
    artifact: str
    start: bool = False


@dataclass
class StageEntryAnswer:
    run_id: int
    rivals: RivalsAnswer
    gates: list[GateAnswer]
    """Empty when a newer execution supersedes this one (the gates were not judged)."""
    claim: ClaimAnswer | None
    """None unless every gate passed (the stage was then claimed, or found busy or superseded)."""


@dataclass
class BakeRoundRequest:
    """A_BAKE_ROUND. `start_seconds` set: move the run to `baking` first, with `bake_started`
    (`duration_s` this). When every gate passes: the bake recorded as passed for `targets`, then
    the run moved to `passed_status` (`succeeded`, or `awaiting_promotion`) with `bake_finished`."""

    gates: BakeGatesRequest
    targets: list[str]
    passed_status: str
    start_seconds: int | None = None
    rolls_back: bool = False
    """A failed round rolls the stage back inside the bake activity (A_BAKE, patch
    `bake-rolls-back`), as A_ROLL_BACK would with `finish`: the rollback's first hook starts
    without a trip through Temporal, and the answer carries how the execution ended."""


A_ROLL_BACK = "roll_back_stage"
"""An automatic rollback in one activity on `pipewarden-deploy`: the plan, the run `rolling_back`
with `rollback_started`, the redeploy of every restored target, each target's rollback recorded,
and the run `rolled_back` or `failed` with `rollback_finished`. Histories from before it call
A_ROLLBACK_PLAN, A_STAGE_STATUS, A_DEPLOY, A_ROLLED_BACK and A_STAGE_STATUS one by one."""


@dataclass
class StageRollbackRequest:
    """A_ROLL_BACK of stage run `run_id` away from `replacing`, because of `reason` (its `trigger`:
    `hook`, `tests`, `datapoints`, `alarm`, `deadline`), observed at `triggered` (the duration in
    `rollback_finished` counts from it). `events` go with the `rolling_back` status (before
    `rollback_started`: a failed bake's `bake_finished`)."""

    run_id: int
    execution: str
    pipeline: str
    repo: str
    stage: str
    replacing: str
    reason: str
    trigger: str
    triggered: str
    now: str
    events: list[EventSpec] = field(default_factory=list)
    finish: bool = False
    """Also end the execution with the rollback's outcome and `rolled_back_reason` (its
    `execution_finished`), as the rollback's last step: a failed bake's rollback is the
    execution's end, and one activity fewer per execution matters when 100 fail at once."""
    adopt: bool = False
    """The rollback of a failed round that a bake activity started (patch `bake-rolls-back`) and
    its workflow no longer waits for: wait for it when it runs in this process, answer its end
    when the store has it, else carry it on (its reason, trigger and time read from the store;
    the fields above are then not used)."""


@dataclass
class StageRollbackAnswer:
    outcome: str
    """The execution's status: `rolled_back`, or `failed` (nothing restored, or a rollback hook failed)."""
    restored_to: str
    """`TARGET -> ARTIFACT, ...` of the targets redeployed, or `nothing restored`."""
    ended: str | None = None
    """With `finish`: the reason the execution ended with (`rolled_back_reason`)."""


def rolled_back_reason(stage: str, reason: str, restored_to: str) -> str:
    """The reason an execution ends with after an automatic rollback of `stage`."""
    return f"{stage}: {reason}; rolled back ({restored_to})"


def rollback_started(plan: RollbackPlanAnswer, trigger: str, actor: str) -> EventSpec:
    """The `rollback_started` event of `plan`: its trigger and the artifact each target goes to
    (null for a target left as it is)."""
    to = {target.target: target.artifact for target in plan.targets}
    return EventSpec("rollback_started", {"trigger": trigger, "to": to}, "rollback_started", actor=actor)


TASK_QUEUE_BAKE = "pipewarden-bake"
"""Bakes (A_BAKE): each holds its activity for the whole bake, so they have a worker of their own
with room for many at once; the other queues' slots stay free for short activities."""
A_BAKE = "bake_stage"
"""A stage's bake in one activity (up to `BAKE_SPAN_SECONDS` of it): a round of its gates at once
and then every `poll.gates` (sooner when the server's alarm evaluator sees the stage's alarms
change), until one fails or all pass. Histories from before it run one A_BAKE_ROUND per round."""
BAKE_SPAN_SECONDS = 3600
"""An A_BAKE still waiting after this long answers `decided: false` and the workflow starts the
next one, so that no activity runs unbounded."""


@dataclass
class BakeAnswer:
    gates: list[GateAnswer]
    """The gates of the last round judged."""
    now: str
    """When that round judged them (a failure's `triggered`)."""
    decided: bool
    """A gate failed, or all passed (recorded, and the run moved on, as A_BAKE_ROUND does, or
    found moved on by an earlier bake activity of the run that a `wake` replaced); false: the
    bake still waits after BAKE_SPAN_SECONDS, or the run left `baking` for `left`."""
    left: str | None = None
    """The status the run had when a round found it no longer baking and not passed (`cancelled`
    by its workflow, or anything done to it outside the bake): nothing more to judge."""
    finished: ExecutionOutcome | None = None
    """With `rolls_back`: the execution's end, written by the rollback this bake ran (or found run
    by an earlier bake activity of the run); the workflow records nothing more."""


TRIGGERS = {"datapoints": "datapoints", "alarms": "alarm", "bake_time": "deadline"}
"""The rollback trigger of a bake gate's `fail`."""


def bake_failure(answers: list[GateAnswer]) -> tuple[str, str] | None:
    """(trigger, reason) of a bake round's first failed gate; None when none failed."""
    failed = next((answer for answer in answers if answer.result == "fail"), None)
    if failed is None:
        return None
    return TRIGGERS.get(failed.gate, "deadline"), f"{failed.gate}: {failed.reason}"
