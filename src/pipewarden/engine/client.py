"""`EngineClient`: the typed facade the fronts (the HTTP API, the poller, tests) use to start and
steer executions (engine.md, "Executions", "Human actions", "Overrides", "Rollback").

Every human action is checked against the store **before** anything is signalled: an action that
does not apply now writes a `refused` event (with its actor) and raises `Refused` (the API answers
409); an unknown pipeline, execution or stage raises `NotFound` (404) and a malformed value
`InvalidValue` (400), without an event (nothing was attempted on anything that exists).

What each action writes, and who writes it:

- `approve` writes its `approved` event here (keyed by execution, stage and approval, so two
  people approving at once write one event), then signals the workflow only to wake it: the
  entry-gates activity counts the `approved` events of the store, which survive a retry or a
  restarted workflow run.
- `pause`, `resume`, `override` and `revoke_override` write the store here and wake every
  execution of the pipeline waiting at a stage entry, so its gates are judged again at once.
- `promote`, `reject` and `cancel` are signals; the workflow writes their events with the status
  change they cause (one transaction). A signal that arrives too late (the run moved on between
  the check and the signal) is answered by the workflow with a `refused` event.
- `retry` starts a new run of the execution's workflow (same workflow id: the failed run has
  ended), which writes `retried` and sets the execution `running` again.
- `rollback` starts a `RollbackWorkflow` (`PIPELINE-rollback-STAGE-N`).

Store and git calls block (SQLite may wait for its write lock), so they run in a thread: the
event loop of the server stays free.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from pipewarden.engine.activities.artifacts import ArtifactError, git, read_at_commit
from pipewarden.engine.contract import (
    SIGNAL_APPROVE,
    SIGNAL_CANCEL,
    SIGNAL_PROMOTE,
    SIGNAL_REJECT,
    SIGNAL_WAKE,
    TASK_QUEUE_CONTROL,
    WORKFLOW_EXECUTION,
    WORKFLOW_ROLLBACK,
    ApproveSignal,
    CancelSignal,
    ExecutionInput,
    PromoteSignal,
    RejectSignal,
    RetryInput,
    RollbackInput,
    halt_key,
)
from pipewarden.engine.domain import overrides as override_rules
from pipewarden.engine.domain.errors import InvalidValue, NotFound, Refused
from pipewarden.engine.domain.events import draft
from pipewarden.engine.domain.gates.approval import approval_to_give
from pipewarden.engine.domain.overrides import Override
from pipewarden.engine.domain.status import ExecutionStatus, StageRunStatus
from pipewarden.engine.poller import branch_head, repository_git_dir
from pipewarden.engine.store import EngineStore
from pipewarden.engine.store.records import ExecutionRecord, PipelineRecord, StageRunRecord
from pipewarden.load.gitrepo import GitError
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.model.view import PipelineView, StageView, pipeline_view

T = TypeVar("T")

_COMMIT_TEXT = re.compile(r"[0-9a-fA-F]{4,40}")
_ARTIFACT_TEXT = re.compile(r"[0-9a-f]{12}")
DEFAULT_PIPELINE_PATH = "pipeline.yaml"
RETRY_START_WAIT_SECONDS = 15.0
"""How long `retry` waits for the failed run of the workflow to close (it has written `failed`
and is completing) before it gives up starting the new run."""


# ---------------------------------------------------------------- module functions (step 2)


async def start_execution(client: Client, store: EngineStore, pipeline: str, repo: str, commit: str, *,
                          trigger: str = "release", pipeline_path: str = DEFAULT_PIPELINE_PATH,
                          poll_gates_seconds: int = 10, queue_prefix: str = "",
                          now: datetime | None = None) -> tuple[ExecutionRecord, WorkflowHandle[object, object]]:
    """Create the execution `PIPELINE-N` in the store (with its `execution_started` event) and
    start its workflow, whose id is the execution id. No checks: `EngineClient.release` is the
    front's way; this is the building block (and the tests' shortcut)."""
    record = store.create_execution(pipeline, commit, trigger=trigger, now=now or datetime.now(UTC))
    handle: WorkflowHandle[object, object] = await client.start_workflow(
        WORKFLOW_EXECUTION,
        ExecutionInput(record.id, pipeline, repo, commit, pipeline_path, poll_gates_seconds, queue_prefix),
        id=record.id, task_queue=queue_prefix + TASK_QUEUE_CONTROL)
    return record, handle


# ---------------------------------------------------------------- the facade


class EngineClient:
    """The actions of engine.md on one store and one Temporal service.

    `queue_prefix` separates engines sharing one Temporal (tests); `poll_gates_seconds` is what
    the workflows it starts re-evaluate waiting gates at; `clock` gives now (aware UTC).
    """

    def __init__(self, temporal: Client, store: EngineStore, *, queue_prefix: str = "",
                 poll_gates_seconds: int = 10, clock: Callable[[], datetime] | None = None,
                 history_limit: int = ExecutionInput.history_limit) -> None:
        """`history_limit`: the history length at which a waiting execution continues as new
        (ExecutionInput.history_limit; tests lower it)."""
        self.temporal = temporal
        self.store = store
        self.queue_prefix = queue_prefix
        self.poll_gates_seconds = poll_gates_seconds
        self.history_limit = history_limit
        self._clock = clock or (lambda: datetime.now(UTC))
        self._views: dict[tuple[str, str, str], PipelineView | None] = {}

    # ------------------------------------------------------------ starting executions

    async def release(self, pipeline: str, commit: str | None = None, *, actor: str,
                      reason: str | None = None) -> ExecutionRecord:
        """`release PIPELINE [--commit SHA]`: an execution of `commit` (any commit of the
        pipeline's repository, abbreviated or full), or of the head of its branch when None.
        Releasing the current head marks it released, so the poller does not release it again.
        `reason` goes into the `execution_started` event's data (key `reason`)."""
        record = await self._pipeline(pipeline)
        repo, branch = self._source(record)
        try:
            head = await _io(_branch_head, repo, branch)
        except GitError as error:
            await self._refuse("release", f"repository {repo} cannot be read: {error}", actor=actor,
                               pipeline=pipeline)
        if commit is None:
            if head is None:
                await self._refuse("release", f"branch {branch} does not exist in {repo}", actor=actor,
                                   pipeline=pipeline)
            commit = head
        else:
            commit = await _io(resolve_commit, repo, commit)
        created = await _io(self.store.create_execution, pipeline, commit, trigger="release", now=self._clock(),
                            actor=actor, mark_released=commit == head, reason=reason)
        await self._start(created, record)
        return created

    async def start_polled(self, pipeline: str, commit: str) -> ExecutionRecord:
        """The poller's start of a new head (trigger `poll`; the commit is recorded as released in
        the same transaction). Idempotent: a second call for the same commit returns the execution
        the first made, and starts its workflow only if it never started."""
        record = await self._pipeline(pipeline)
        self._source(record)
        created = await _io(self.store.create_execution, pipeline, commit, trigger="poll", now=self._clock(),
                            key=f"poll:{pipeline}:{commit}")
        if created.status is not ExecutionStatus.RUNNING:
            return created  # made by an earlier call, and already ended
        try:
            await self._start(created, record)
        except WorkflowAlreadyStartedError:
            pass  # an earlier call started it, and it still runs
        return created

    async def _start(self, execution: ExecutionRecord, pipeline: PipelineRecord, *,
                     retry: RetryInput | None = None) -> WorkflowHandle[Any, Any]:
        repo, _ = self._source(pipeline)
        run = ExecutionInput(execution.id, execution.pipeline, repo, execution.commit,
                             pipeline.path or DEFAULT_PIPELINE_PATH, self.poll_gates_seconds, self.queue_prefix,
                             retry, history_limit=self.history_limit)
        # ALLOW_DUPLICATE (Temporal's default): a retry is a new run of an ended execution's
        # workflow. A start never runs an ended execution again: callers check the store first.
        handle: WorkflowHandle[Any, Any] = await self.temporal.start_workflow(
            WORKFLOW_EXECUTION, run, id=execution.id, task_queue=self.queue_prefix + TASK_QUEUE_CONTROL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        return handle

    # ------------------------------------------------------------ human gates

    async def approve(self, execution: str, stage: str, approval: str | None = None, *, actor: str,
                      reason: str | None = None) -> str:
        """`approve ID --stage S [--approval NAME]`: record one approval of the stage for this
        execution; the name given (the stage's only approval when `approval` is None)."""
        record = await self._execution(execution)
        view = await self._view(record)
        required = _stage(view, stage, execution).approvals
        context = {"actor": actor, "pipeline": record.pipeline, "execution": execution, "stage": stage}
        if record.status is not ExecutionStatus.RUNNING:
            await self._refuse("approve", f"execution {execution} has ended ({record.status})", **context)
        events = await _io(self.store.events, execution=execution, types=["approved"])
        given = [str(event.data["approval"]) for event in events if event.stage == stage]
        try:
            name = approval_to_give(required, given, approval)
        except Refused as refused:
            await self._refuse(refused.action, refused.reason, **context)
        event = draft("approved", time=self._clock(), actor=actor, pipeline=record.pipeline, execution=execution,
                      stage=stage, data={"reason": reason, "approval": name})
        await _io(self.store.append_event, event, key=f"{execution}/approved/{stage}/{name}")
        await self._signal(execution, SIGNAL_APPROVE, ApproveSignal(stage, name, actor, reason), required=False)
        return name

    async def promote(self, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
        """`promote ID --stage S`: S is the stage the execution awaits promotion at, or the next one."""
        record = await self._execution(execution)
        view = await self._view(record)
        _stage(view, stage, execution)
        context = {"actor": actor, "pipeline": record.pipeline, "execution": execution, "stage": stage}
        runs = await _io(self.store.stage_runs, execution=execution)
        latest = runs[-1] if runs else None
        names = [s.name for s in view.stages]
        if record.status is not ExecutionStatus.RUNNING or latest is None \
                or latest.status is not StageRunStatus.AWAITING_PROMOTION:
            await self._refuse("promote", f"execution {execution} is not awaiting promotion "
                               f"({_where(record, latest)})", **context)
        after = names.index(latest.stage) + 1 if latest.stage in names else len(names)
        if stage != latest.stage and (after >= len(names) or names[after] != stage):
            await self._refuse("promote", f"execution {execution} awaits promotion at {latest.stage}, not at {stage}",
                               **context)
        await self._signal(execution, SIGNAL_PROMOTE, PromoteSignal(latest.stage, actor, reason))

    async def reject(self, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
        """`reject ID --stage S`: end the execution `failed`; it waits at S's entry or awaits
        promotion at S."""
        record = await self._execution(execution)
        _stage(await self._view(record), stage, execution)
        runs = [run for run in await _io(self.store.stage_runs, execution=execution) if run.stage == stage]
        latest = runs[-1] if runs else None
        if record.status is not ExecutionStatus.RUNNING or latest is None or latest.status not in (
                StageRunStatus.WAITING, StageRunStatus.AWAITING_PROMOTION):
            await self._refuse("reject", f"execution {execution} is neither waiting at the entry of {stage} nor "
                               f"awaiting promotion there ({_where(record, latest)})", actor=actor,
                               pipeline=record.pipeline, execution=execution, stage=stage)
        await self._signal(execution, SIGNAL_REJECT, RejectSignal(stage, actor, reason))

    async def cancel(self, execution: str, *, actor: str, reason: str | None = None) -> None:
        """`cancel ID`: start nothing new, let running hooks finish, no rollback; ends `cancelled`."""
        record = await self._execution(execution)
        if record.status is not ExecutionStatus.RUNNING:
            await self._refuse("cancel", f"execution {execution} has ended ({record.status})", actor=actor,
                               pipeline=record.pipeline, execution=execution)
        runs = await _io(self.store.stage_runs, execution=execution)
        if runs and runs[-1].status is StageRunStatus.DEPLOYING:
            # Its deploy starts no new hook from now on, not only once the workflow has the signal
            # (it writes the same halt, A_HALT).
            why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
            await _io(self.store.halt_deploy, halt_key(execution, runs[-1].id, rollback=False), why,
                      now=self._clock())
        await self._signal(execution, SIGNAL_CANCEL, CancelSignal(actor, reason))

    async def retry(self, execution: str, stage: str, *, actor: str, reason: str | None = None) -> None:
        """`retry ID --stage S`: a new stage run of S from its entry gates for an execution that
        failed there (approvals already given still count), while no newer execution has deployed
        S. The execution is `running` again once its new workflow run has started."""
        record = await self._execution(execution)
        _stage(await self._view(record), stage, execution)
        context = {"actor": actor, "pipeline": record.pipeline, "execution": execution, "stage": stage}
        runs = await _io(self.store.stage_runs, execution=execution)
        latest = runs[-1] if runs else None
        if record.status is not ExecutionStatus.FAILED or latest is None or latest.stage != stage \
                or latest.status is not StageRunStatus.FAILED or record.artifact is None:
            await self._refuse("retry", f"execution {execution} has not failed at {stage} "
                               f"({_where(record, latest)})", **context)
        newer = await self._newer_deployed(record, stage)
        if newer is not None:
            await self._refuse("retry", f"the newer execution {newer} has deployed {stage}", **context)
        pipeline = await self._pipeline(record.pipeline)
        retry = RetryInput(stage, record.artifact, actor, reason)
        deadline = asyncio.get_running_loop().time() + RETRY_START_WAIT_SECONDS
        while True:
            try:
                await self._start(record, pipeline, retry=retry)
                return
            except WorkflowAlreadyStartedError:
                # The failed run wrote `failed` and is completing, or another retry just started.
                if asyncio.get_running_loop().time() > deadline:
                    await self._refuse("retry", f"execution {execution} has a workflow run still running",
                                       **context)
                await asyncio.sleep(0.2)

    async def _newer_deployed(self, record: ExecutionRecord, stage: str) -> str | None:
        """The newest execution (by N) newer than `record` that has deployed `stage`, if any."""
        runs = await _io(self.store.stage_runs, pipeline=record.pipeline, stage=stage)
        newer: tuple[int, str] | None = None
        for run in runs:
            number = _number(run.execution)
            if run.deployed and number > record.number and (newer is None or number > newer[0]):
                newer = (number, run.execution)
        return None if newer is None else newer[1]

    # ------------------------------------------------------------ pipelines

    async def pause(self, pipeline: str, *, actor: str, reason: str | None = None) -> None:
        """`pause PIPELINE`: close the entry of every stage (work inside a stage finishes)."""
        await self._set_paused(pipeline, True, actor, reason)

    async def resume(self, pipeline: str, *, actor: str, reason: str | None = None) -> None:
        """`resume PIPELINE`: reopen them; waiting executions judge their gates at once."""
        await self._set_paused(pipeline, False, actor, reason)

    async def _set_paused(self, pipeline: str, paused: bool, actor: str, reason: str | None) -> None:
        await self._pipeline(pipeline)
        try:
            await _io(self.store.set_paused, pipeline, paused, actor=actor, now=self._clock(), reason=reason)
        except Refused as refused:
            await self._refuse(refused.action, refused.reason, actor=actor, pipeline=pipeline)
        await self._wake_waiting(pipeline)

    async def override(self, pipeline: str, stage: str, gate: str, ttl_seconds: int = override_rules.DEFAULT_TTL_SECONDS,
                       *, actor: str, reason: str) -> Override:
        """`override GATE --pipeline P --stage S --reason TEXT [--ttl]`: that gate passes for the
        stage until the override expires (a new one replaces the old). `policy`, `approval`,
        `stage_busy` and `paused` are refused, as is an empty reason."""
        record = await self._pipeline(pipeline)
        await self._known_stage(record, stage)
        try:
            granted = override_rules.grant(gate, pipeline=pipeline, stage=stage, actor=actor, reason=reason or "",
                                           now=self._clock(), ttl_seconds=ttl_seconds)
            await _io(self.store.put_override, granted)
        except Refused as refused:
            await self._refuse(refused.action, refused.reason, actor=actor, pipeline=pipeline, stage=stage)
        await self._wake_waiting(pipeline)
        return granted

    async def revoke_override(self, pipeline: str, stage: str, gate: str, *, actor: str,
                              reason: str | None = None) -> None:
        """`override GATE --pipeline P --stage S --revoke` (refused when none is active).
        `override_revoked` carries the override's own reason, as engine.md's keys say."""
        record = await self._pipeline(pipeline)
        await self._known_stage(record, stage)
        try:
            await _io(self.store.revoke_override, pipeline, stage, gate, actor=actor, now=self._clock())
        except Refused as refused:
            await self._refuse(refused.action, refused.reason, actor=actor, pipeline=pipeline, stage=stage)
        await self._wake_waiting(pipeline)

    async def rollback(self, pipeline: str, stage: str, to: str | None = None, pause: bool = True, *, actor: str,
                       reason: str | None = None) -> str:
        """`rollback PIPELINE --stage S [--to ARTIFACT] [--no-pause]`: start the rollback of the
        artifact last deployed to S, and return that artifact (the one replaced). The rollback
        workflow (`rollback_workflow_id`) checks `to` (intact, not blocklisted) with the artifact
        store, pauses the pipeline (unless `pause` is False), cancels the occupant of S and the
        execution that deployed the replaced artifact, waits for their running hooks, then
        redeploys (engine.md, "Rollback")."""
        record = await self._pipeline(pipeline)
        repo, _ = self._source(record)
        await self._known_stage(record, stage)
        context = {"actor": actor, "pipeline": pipeline, "stage": stage}
        if to is not None and _ARTIFACT_TEXT.fullmatch(to) is None:
            raise InvalidValue(f"--to {to!r} is not an artifact id (12 lowercase hex digits)")
        runs = await _io(self.store.stage_runs, pipeline=pipeline, stage=stage)
        deployed = [run for run in runs if run.deployed and run.artifact is not None]
        if not deployed:
            await self._refuse("rollback", f"nothing has been deployed to {stage}", **context)
        latest = deployed[-1]
        assert latest.artifact is not None
        if latest.status in (StageRunStatus.ROLLING_BACK, StageRunStatus.ROLLED_BACK):
            await self._refuse("rollback", f"{latest.artifact} of {latest.execution} is already "
                               f"{'being ' if latest.status is StageRunStatus.ROLLING_BACK else ''}rolled back "
                               f"from {stage}", **context)
        if to == latest.artifact:
            await self._refuse("rollback", f"{to} is the artifact being replaced", **context)
        occupants = [occupant.execution for occupant in await _io(self.store.occupants, pipeline, stage)]
        cancel = list(dict.fromkeys([*occupants, latest.execution]))
        ident = rollback_workflow_id(pipeline, stage, latest.execution)
        try:
            await self.temporal.start_workflow(
                WORKFLOW_ROLLBACK,
                RollbackInput(pipeline, repo, stage, latest.execution, latest.id, latest.artifact, to, pause, cancel,
                              actor, reason, self.poll_gates_seconds, self.queue_prefix),
                id=ident, task_queue=self.queue_prefix + TASK_QUEUE_CONTROL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        except WorkflowAlreadyStartedError:
            await self._refuse("rollback", f"a rollback of {stage} is already running ({ident})", **context)
        return latest.artifact

    # ------------------------------------------------------------ helpers

    async def _pipeline(self, name: str) -> PipelineRecord:
        record = await _io(self.store.pipeline, name)
        if record is None:
            raise NotFound(f"no pipeline {name!r}")
        return record

    async def _execution(self, ident: str) -> ExecutionRecord:
        record = await _io(self.store.execution, ident)
        if record is None:
            raise NotFound(f"no execution {ident!r}")
        return record

    @staticmethod
    def _source(record: PipelineRecord) -> tuple[str, str]:
        if record.repo is None or record.branch is None:
            raise NotFound(f"pipeline {record.name} has no repository yet (the poller has not read it)")
        return record.repo, record.branch

    async def _view(self, execution: ExecutionRecord) -> PipelineView:
        """The definition the execution follows: the pipeline file of its own commit."""
        record = await self._pipeline(execution.pipeline)
        repo, _ = self._source(record)
        key = (repo, execution.commit, record.path or DEFAULT_PIPELINE_PATH)
        if key not in self._views:
            self._views[key] = await _io(_read_view, *key)
        view = self._views[key]
        if view is None:
            raise NotFound(f"execution {execution.id} has no valid definition (its policy gate failed)")
        return view

    async def _known_stage(self, record: PipelineRecord, stage: str) -> None:
        """NotFound unless `stage` is a stage of the pipeline's newest definition or has runs."""
        stages = [str(s.get("name")) for s in (record.definition or {}).get("stages", []) if isinstance(s, dict)]
        if stage in stages:
            return
        if not await _io(self.store.stage_runs, pipeline=record.name, stage=stage):
            raise NotFound(f"pipeline {record.name} has no stage {stage!r}")

    async def _refuse(self, action: str, reason: str, *, actor: str, pipeline: str | None = None,
                      execution: str | None = None, stage: str | None = None) -> NoReturn:
        await _io(self.store.refuse, action, reason, actor=actor, now=self._clock(), pipeline=pipeline,
                  execution=execution, stage=stage)
        raise Refused(action, reason)

    async def _signal(self, execution: str, name: str, argument: object, *, required: bool = True) -> None:
        """Signal the execution's workflow. When none is running (it is being restarted by
        recovery, or a race ended it), a `required` signal is refused; a wake-up is not needed
        (what it announces is in the store already)."""
        try:
            handle = self.temporal.get_workflow_handle(execution)
            await (handle.signal(name) if argument is None else handle.signal(name, argument))
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            if required:
                record = await self._execution(execution)
                await self._refuse(name, f"execution {execution} has no running workflow ({record.status})",
                                   actor=_actor_of(argument), pipeline=record.pipeline, execution=execution)

    async def _wake_waiting(self, pipeline: str) -> None:
        """Wake every execution of the pipeline waiting at a stage entry (its gates changed)."""
        runs = await _io(self.store.stage_runs, pipeline=pipeline)
        waiting = dict.fromkeys(run.execution for run in runs if run.status is StageRunStatus.WAITING)
        for execution in waiting:
            await self._signal(execution, SIGNAL_WAKE, None, required=False)


# ---------------------------------------------------------------- helpers


def rollback_workflow_id(pipeline: str, stage: str, execution: str) -> str:
    """The id of the manual rollback of `stage` away from the artifact `execution` deployed there:
    `PIPELINE-rollback-STAGE-N` (one at a time per replaced artifact)."""
    return f"{pipeline}-rollback-{stage}-{_number(execution)}"


async def _io(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


def _stage(view: PipelineView, name: str, execution: str) -> StageView:
    for stage in view.stages:
        if stage.name == name:
            return stage
    raise NotFound(f"execution {execution} has no stage {name!r}: {', '.join(s.name for s in view.stages)}")


def _where(record: ExecutionRecord, latest: StageRunRecord | None) -> str:
    """Where an execution is, for a refusal's reason."""
    if record.status is not ExecutionStatus.RUNNING:
        return f"it has ended {record.status}"
    if latest is None:
        return "it has not reached a stage"
    return f"its stage run at {latest.stage} is {latest.status}"


def _number(execution: str) -> int:
    return int(execution.rsplit("-", 1)[1])


def _actor_of(argument: object) -> str:
    actor = getattr(argument, "actor", None)
    return actor if isinstance(actor, str) else "engine"


def _read_view(repo: str, commit: str, path: str) -> PipelineView | None:
    try:
        loaded = load_pipeline_bytes(path, read_at_commit(repo, commit, path))
    except ArtifactError:
        return None
    if not loaded.valid or not isinstance(loaded.document, dict):
        return None
    try:
        return pipeline_view(loaded.document)
    except ValueError:
        return None


def _branch_head(repo: str, branch: str) -> str | None:
    """The head of `branch` in `repo`, None when the branch does not exist; GitError when the
    repository cannot be read (never taken for a missing branch)."""
    return branch_head(repository_git_dir(repo), branch)


def resolve_commit(repo: str, commit: str) -> str:
    """The full name of `commit` in `repo`; InvalidValue when it is not hex or not a commit there.
    Only hex is accepted, so nothing a user types reaches git as an option or a ref name."""
    if _COMMIT_TEXT.fullmatch(commit) is None:
        raise InvalidValue(f"--commit {commit!r} is not a commit name (4 to 40 hex digits)")
    try:
        return git(["-C", repo, "rev-parse", "--verify", "--quiet", f"{commit.lower()}^{{commit}}"]).strip()
    except ArtifactError:
        raise InvalidValue(f"commit {commit} is not in {repo}") from None
