"""`ExecutionWorkflow`: one execution of one artifact (engine.md, "Executions", "A stage run",
"Failure", "Human actions"), and `RollbackWorkflow`: a manual `rollback` ("Rollback").

ExecutionWorkflow: policy gate -> build -> for each stage: entry gates (policy, blocklist,
approval, window, alarms, stage_busy, paused; supersede judged with them; a wait sleeps until the
gates' `until` when all know one, else one poll) -> deploy (targets in parallel, batches in order
under min_healthy, hooks stop/install/start/validate in order on each host; after the first failed
host no new batch and no new hook starts anywhere) -> stage tests -> bake (rounds of bake_time,
datapoints and the alarms tripwire every poll.gates, the deadline over the whole bake; bake_time
alone: a durable timer, then one round) -> promotion (automatic, or manual by signal). The alarms
tripwire also runs beside the deploy and the tests (every poll.gates). A failed hook, test or bake
(negative datapoints, a firing alarm, the deadline) with `rollback: automatic` rolls the stage back
to each target's last good artifact, with the hooks of that artifact's own definition.

Human actions arrive as signals, each checked by the client against the store first: `approve`
and `wake` (pause, resume, overrides, a rival execution) only make the gates be judged again;
`promote`, `reject` and `cancel` change where the execution goes; a signal that arrives too late
for what it asked is answered with a `refused` event. `retry` is a new run of this workflow for
the same execution id (the failed run has ended), with `ExecutionInput.retry` set: it skips the
build and the stages before the retried one.

Supersede: at its arrival at a stage entry and at every evaluation of its gates, an execution asks
the store who else is at the stage (`stage_rivals`); it takes the stage only through
`claim_stage`, one store transaction that also judges supersede, so two executions never both
deploy and an older one never deploys over a newer one. Executions it supersedes are woken (an
external `wake` signal) to see it at once.

Deterministic: the clock is `workflow.now()`, waits are timers and conditions, and everything
that touches the world (git, processes, the store) is an activity named in `contract.py`. The
definition followed is the `pipeline.yaml` of the execution's own commit, read by the policy
activity and turned into the typed view here (a pure function).

Versioning: a change that alters the commands of a running workflow must be guarded with
`workflow.patched(...)`; `tests/engine/test_replay.py` replays recorded histories through this
code, and the server refuses to start over executions it cannot continue (engine/versioning.py).

Long waits (at an entry gate, awaiting promotion) continue as new once the history is long
(`_continue_if_long`), carrying the stage run and the signals held (`ResumeInput`).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType, ActivityHandle

with workflow.unsafe.imports_passed_through():
    from pipewarden.engine.contract import (
        A_APPEND,
        A_BAKE,
        A_BAKE_GATE,
        A_BAKE_GATES,
        A_BAKE_PASSED,
        A_BAKE_ROUND,
        A_BLOCKERS,
        A_BUILD,
        A_CLAIM,
        A_DEPLOY,
        A_ENTER,
        A_ENTRY_GATES,
        A_EXECUTION_STATUS,
        A_HALT,
        A_HOOK,
        A_PAUSE,
        A_POLICY,
        A_RETRIED,
        A_RIVALS,
        A_ROLL_BACK,
        A_ROLLBACK_PLAN,
        A_ROLLED_BACK,
        A_STAGE_STATUS,
        A_START_STAGE,
        A_TESTS,
        A_TRIPWIRE,
        BAKE_SPAN_SECONDS,
        SIGNAL_APPROVE,
        SIGNAL_CANCEL,
        SIGNAL_PROMOTE,
        SIGNAL_REJECT,
        SIGNAL_WAKE,
        TASK_QUEUE_BAKE,
        TASK_QUEUE_BUILD,
        TASK_QUEUE_CONTROL,
        TASK_QUEUE_DEPLOY,
        WORKFLOW_EXECUTION,
        WORKFLOW_ROLLBACK,
        AppendEventsRequest,
        ApproveSignal,
        BakeAnswer,
        BakeGateRequest,
        BakeGatesRequest,
        BakePassedRequest,
        BakeRoundRequest,
        BlockersAnswer,
        BlockersRequest,
        BuildAnswer,
        BuildRequest,
        CancelSignal,
        ClaimAnswer,
        ClaimRequest,
        DeployAnswer,
        DeployRequest,
        EntryGatesRequest,
        EventSpec,
        ExecutionInput,
        ExecutionOutcome,
        ExecutionStatusRequest,
        GateAnswer,
        HaltRequest,
        HookAnswer,
        HookRequest,
        PauseRequest,
        PolicyAnswer,
        PolicyRequest,
        PromoteSignal,
        RejectSignal,
        ResumeInput,
        RetryRecordRequest,
        RivalsAnswer,
        RivalsRequest,
        RollbackInput,
        RollbackPlanAnswer,
        RollbackPlanRequest,
        RolledBackRequest,
        StageEntryAnswer,
        StageEntryRequest,
        StageRollbackAnswer,
        StageRollbackRequest,
        StageStartRequest,
        StageStatusRequest,
        TestsAnswer,
        TestSpec,
        TestsRequest,
        TripwireRequest,
        bake_failure,
        halt_key,
        rollback_started,
        rolled_back_reason,
    )
    from pipewarden.engine.domain.gates.base import next_round_seconds
    from pipewarden.engine.domain.ids import format_time, parse_time
    from pipewarden.engine.domain.plan import DeployPart, production_config, stage_plan
    from pipewarden.engine.domain.rollback import restored_parts
    from pipewarden.engine.parts import deploy_target, rollback_end
    from pipewarden.model.view import PipelineView, StageView, pipeline_view

T = TypeVar("T")

CONTROL_TIMEOUT = timedelta(seconds=60)
# Activities are retried (a worker crash, a locked database); a bug must not retry for ever in
# tests, so the attempts are bounded. Hook runs stay exactly-once through the store's lookup.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                    maximum_attempts=5)
ACTIVITY_MARGIN_SECONDS = 60
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
"""Builds, hooks and tests heartbeat every few seconds (activities/engine.py): a worker that dies
mid-hook is noticed within this, and the hook's next attempt takes over its lease."""
BAKE_GATES_TIMEOUT = timedelta(seconds=2 * 30 + 60)
"""A bake round may run two metric commands of 30 s each (engine.md, "Metric references")."""
PATCH_BAKE_GATES = "bake-gates"
"""Issue 14's bake: one A_BAKE_GATES round every poll (datapoints, the alarms tripwire, the
deadline over the bake as a whole) instead of a timer for the whole bake and then A_BAKE_GATE."""
PATCH_TRIPWIRE = "alarm-tripwire"
"""Issue 14: the alarms tripwire beside the deploy and the tests of a stage that lists alarms."""
PATCH_STAGE_ENTRY = "stage-entry"
"""A stage's entry rounds as one A_ENTER activity each instead of A_START_STAGE, A_RIVALS,
A_ENTRY_GATES and A_CLAIM one by one (benchmarks/RESULTS.md, issue 13 (a))."""
PATCH_BAKE_ROUND = "bake-round"
"""A bake's rounds as one A_BAKE_ROUND activity each instead of A_STAGE_STATUS (baking),
A_BAKE_GATES, A_BAKE_PASSED and A_STAGE_STATUS (the run's next status) one by one."""
PATCH_STAGE_DEPLOY = "stage-deploy"
"""A stage's whole deploy (or a rollback's) in one A_DEPLOY activity instead of one A_HOOK
activity per hook: a quarter of the engine's overhead per hook went to the deploy queue's
matching and the workflow task of each hook (benchmarks/RESULTS.md, issue 13 (a))."""
PATCH_BAKE_STAGE = "bake-stage"
"""A watched bake (datapoints, alarms or a deadline) as A_BAKE activities, each judging its rounds
on its own, instead of one A_BAKE_ROUND activity per round: with 100 executions baking every
round's trip through Temporal queued (benchmarks/RESULTS.md, issue 14)."""
PATCH_STAGE_ROLLBACK = "stage-rollback"
"""An automatic rollback as one A_ROLL_BACK activity instead of A_ROLLBACK_PLAN, A_STAGE_STATUS,
A_DEPLOY, A_ROLLED_BACK and A_STAGE_STATUS one by one: with 100 executions failing at once each of
those trips through Temporal queued for seconds (benchmarks/RESULTS.md, issue 14)."""
PATCH_ROLLBACK_FINISHES = "rollback-finishes"
"""A failed bake's A_ROLL_BACK also ends the execution (its `execution_finished`) instead of an
A_EXECUTION_STATUS after it: one activity and one workflow task fewer per execution, when 100
executions fail at once (benchmarks/RESULTS.md, issue 14)."""
PATCH_BAKE_ROLLS_BACK = "bake-rolls-back"
"""A watched bake of a stage with automatic rollback rolls the stage back inside its A_BAKE
activity when a round fails (and the rollback ends the execution, as with
PATCH_ROLLBACK_FINISHES) instead of answering and leaving it to an A_ROLL_BACK: the first rollback
hook starts without the bake's completion, a workflow task and the deploy queue's matching, which
were half the time to react when 100 executions failed at once (benchmarks/RESULTS.md, issue 14)."""
ROLLBACK_TIMEOUT = timedelta(hours=24)
"""A_ROLL_BACK's bound: the restored artifacts' own hooks and batching are not known before the
plan, every hook is bounded by its `deploy.timeout` and a lost worker is noticed by the heartbeat
(HEARTBEAT_TIMEOUT), so this only stops a rollback that could never end."""
PROMOTION_RECHECK_SECONDS = 600
"""An execution awaiting promotion is woken by the newer execution that supersedes it; it also
asks the store itself this often, in case a wake-up was lost (a worker restart)."""

Ended = tuple[str, str | None]
"""How a stage run ended for the execution: (execution status, reason); `succeeded` goes on."""


class _Releaser:
    """What both workflows share: control activities, stage run statuses, the deploy of batches
    of hooks, and the rollback code path (automatic in ExecutionWorkflow, manual in
    RollbackWorkflow)."""

    def __init__(self) -> None:
        self._prefix = ""
        self._stop = False
        self._failure: str | None = None
        """What made the first host fail in the last deploy (for the stage's reason)."""

    def _halted(self, rollback: bool) -> bool:
        """No new hook or batch may start: a host failed (ExecutionWorkflow adds `cancel`)."""
        return self._stop

    def _halt_reason(self) -> str:
        """Why `_halted` became true while a deploy ran (for the store's halt record); a manual
        rollback's deploy is never halted, so only ExecutionWorkflow has reasons of its own."""
        return "the deploy was stopped"

    def _now(self) -> str:
        return format_time(workflow.now())

    async def _control(self, name: str, arg: Any, result_type: type[T] | None = None) -> T:
        result: T = await workflow.execute_activity(name, arg, task_queue=self._prefix + TASK_QUEUE_CONTROL,
                                                    result_type=result_type, start_to_close_timeout=CONTROL_TIMEOUT,
                                                    retry_policy=RETRY)
        return result

    async def _stage_status(self, run_id: int, status: str, *, reason: str | None = None,
                            artifact: str | None = None, events: list[EventSpec] | None = None) -> None:
        await self._control(A_STAGE_STATUS, StageStatusRequest(run_id, status, self._now(), reason, artifact,
                                                               events or []))

    async def _finish(self, execution: str, status: str, reason: str | None) -> ExecutionOutcome:
        await self._control(A_EXECUTION_STATUS, ExecutionStatusRequest(execution, status, self._now(), reason))
        return ExecutionOutcome(status, reason)

    async def _append(self, execution: str, pipeline: str, stage: str | None, events: list[EventSpec]) -> None:
        await self._control(A_APPEND, AppendEventsRequest(execution, pipeline, self._now(), stage, events))

    # ------------------------------------------------------------ deploy

    async def _deploy(self, run: ExecutionInput, deploys: list[DeployPart], hosts: list[str], *, rollback: bool,
                      run_id: int) -> bool:
        """Targets in parallel, each in its batches; after the first failed host no new batch and
        no new hook starts anywhere (hooks already running finish). True when every host passed."""
        self._stop = False
        self._failure = None
        if not deploys:
            return not self._halted(rollback)
        if workflow.patched(PATCH_STAGE_DEPLOY):
            return await self._deploy_in_one(run, deploys, hosts, rollback=rollback, run_id=run_id)
        return await self._deploy_per_hook(run, deploys, hosts, rollback=rollback)

    async def _deploy_in_one(self, run: ExecutionInput, deploys: list[DeployPart], hosts: list[str], *,
                             rollback: bool, run_id: int) -> bool:
        """The deploy as one A_DEPLOY activity (activities/deploy.py). `cancel` or the tripwire
        (`_halted`) reach it through the store (A_HALT), read before every hook."""
        if self._halted(rollback):  # `cancel` came while the stage was being claimed
            return False
        key = halt_key(run.execution, run_id, rollback=rollback)
        request = DeployRequest(run.execution, run.pipeline, run.repo, deploys[0].stage.name, hosts,
                                [deploy_target(deploy) for deploy in deploys], rollback, key)
        handle: ActivityHandle[DeployAnswer] = workflow.start_activity(
            A_DEPLOY, request, task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=DeployAnswer,
            retry_policy=RETRY, heartbeat_timeout=HEARTBEAT_TIMEOUT,
            start_to_close_timeout=timedelta(seconds=_deploy_seconds(deploys) + ACTIVITY_MARGIN_SECONDS))
        await workflow.wait_condition(lambda: handle.done() or self._halted(rollback))
        if not handle.done():
            await self._control(A_HALT, HaltRequest(key, self._halt_reason(), self._now()))
        try:
            answer = await handle
        except ActivityError as error:
            # The deploy could not run at all (its retries spent): the hosts fail like failing
            # hooks, so the stage can roll back.
            self._failure = f"the deploy could not run: {error.cause or error}"
            self._stop = True
            return False
        if not answer.ok and answer.failure is not None:
            self._failure = answer.failure
            self._stop = True
        return answer.ok and not self._halted(rollback)

    async def _deploy_per_hook(self, run: ExecutionInput, deploys: list[DeployPart], hosts: list[str], *,
                               rollback: bool) -> bool:
        """Executions recorded before PATCH_STAGE_DEPLOY: one A_HOOK activity per hook."""

        def failed(what: str) -> bool:
            if self._failure is None:
                self._failure = what
            self._stop = True
            return False

        async def host(deploy: DeployPart, name: str) -> bool:
            for number, hook in enumerate(deploy.hooks):
                if self._halted(rollback):
                    return False
                try:
                    answer = await workflow.execute_activity(
                        A_HOOK, HookRequest(run.execution, run.pipeline, run.repo, deploy.artifact, deploy.commit,
                                            deploy.stage.name, deploy.plan.target, name, hosts, hook.phase,
                                            hook.command, deploy.stage.deploy_timeout_seconds,
                                            production_config(deploy.stage), rollback, number == 0,
                                            number == len(deploy.hooks) - 1),
                        task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=HookAnswer, retry_policy=RETRY,
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        start_to_close_timeout=timedelta(seconds=deploy.stage.deploy_timeout_seconds
                                                         + ACTIVITY_MARGIN_SECONDS))
                except ActivityError as error:
                    # The hook could not be run at all (its artifact unreadable, retries spent):
                    # the host fails like a failing hook, so the stage can roll back.
                    return failed(f"hook {hook.phase} on {name} could not run: {error.cause or error}")
                if not answer.ok:
                    if answer.timed_out:
                        return failed(f"hook {hook.phase} on {name} timed out after "
                                      f"{deploy.stage.deploy_timeout_seconds}s")
                    return failed(f"hook {hook.phase} on {name} exited {answer.exit_code}"
                                  + (f" (output in {answer.log})" if answer.log else ""))
            return True

        async def target(deploy: DeployPart) -> None:
            for batch in deploy.plan.batches:
                if self._halted(rollback):
                    return
                await asyncio.gather(*(host(deploy, name) for name in batch))

        await asyncio.gather(*(target(deploy) for deploy in deploys))
        return not self._halted(rollback)

    # ------------------------------------------------------------ rollback

    async def _rollback(self, run: ExecutionInput, stage: str, run_id: int, replacing: str,
                        plan: RollbackPlanAnswer, triggered: datetime) -> tuple[str, str]:
        """Redeploy the hosts of `plan` (the run is `rolling_back` already, `rollback_started`
        written) with each restored artifact's own hooks and batching, record it per target,
        write `rollback_finished` (its duration from `triggered` to the last host validated) and
        end the run `rolled_back` or `failed`. The execution's outcome and what was restored."""
        deploys = restored_parts(stage, plan.targets)
        ok = await self._deploy(run, deploys, plan.stage_hosts, rollback=True, run_id=run_id) if deploys else True
        if ok:
            for deploy in deploys:
                await self._control(A_ROLLED_BACK, RolledBackRequest(run.pipeline, stage, deploy.plan.target,
                                                                     replacing, self._now()))
        end = rollback_end(deploys, ok, triggered, workflow.now())
        await self._stage_status(run_id, end.run_status, events=[end.event])
        return str(end.outcome), end.restored_to


@workflow.defn(name=WORKFLOW_EXECUTION)
class ExecutionWorkflow(_Releaser):
    def __init__(self) -> None:
        super().__init__()
        self._approvals: dict[str, set[str]] = {}
        self._promotions: dict[str, PromoteSignal] = {}
        self._rejects: dict[str, RejectSignal] = {}
        self._cancel: CancelSignal | None = None
        self._wake = False
        self._open_run: int | None = None
        self._entering: str | None = None
        """The stage whose entry an A_ENTER round is judging while the run's id is not known."""
        self._woken: set[tuple[str, str]] = set()
        self._document: dict[str, Any] = {}
        self._tripped: GateAnswer | None = None
        """The tripwire's `fail` during the current stage's deploy or tests."""
        self._tripped_at: datetime | None = None
        self._deploy_finished = datetime.min
        """When the current stage's deploy finished (the datapoints count from then)."""
        self._finished: ExecutionOutcome | None = None
        """How the execution ended when an activity already recorded its end (PATCH_ROLLBACK_FINISHES)."""
        self._rollback_finishes = False
        """PATCH_ROLLBACK_FINISHES, as the current stage's bake asked at its start."""

    # ------------------------------------------------------------ signals

    @workflow.signal(name=SIGNAL_APPROVE)
    def approve(self, signal: ApproveSignal) -> None:
        # The client has written the `approved` event (the entry gates count the store's); the
        # signal only wakes the gates, and is remembered so the next evaluation sees it at once.
        self._approvals.setdefault(signal.stage, set()).add(signal.approval)
        self._wake = True

    @workflow.signal(name=SIGNAL_PROMOTE)
    def promote(self, signal: PromoteSignal) -> None:
        self._promotions.setdefault(signal.stage, signal)
        self._wake = True

    @workflow.signal(name=SIGNAL_REJECT)
    def reject(self, signal: RejectSignal) -> None:
        self._rejects.setdefault(signal.stage, signal)
        self._wake = True

    @workflow.signal(name=SIGNAL_CANCEL)
    def cancel(self, signal: CancelSignal) -> None:
        if self._cancel is None:
            self._cancel = signal
        self._wake = True

    @workflow.signal(name=SIGNAL_WAKE)
    def wake(self) -> None:
        """Something the gates or the supersede check read changed (pause, resume, an override,
        a rival execution at the stage)."""
        self._wake = True

    def _halted(self, rollback: bool) -> bool:
        # `cancel` starts nothing new in a deploy; a rollback under way is finished (stopping it
        # half-way would leave the stage worse than either artifact).
        return self._stop or (self._cancel is not None and not rollback)

    def _halt_reason(self) -> str:
        if self._cancel is not None:
            return _cancel_reason(self._cancel)
        if self._tripped is not None:
            return f"alarms: {self._tripped.reason}"
        return super()._halt_reason()

    # ------------------------------------------------------------ the execution

    @workflow.run
    async def run(self, run: ExecutionInput) -> ExecutionOutcome:
        self._prefix = run.queue_prefix
        try:
            return await self._execute(run)
        except ActivityError as error:
            # An activity gave up (its retries spent, or a non-retryable error): the execution
            # fails with that reason, and a stage run it left open is closed `failed`, rather
            # than the workflow failing and leaving the store saying `running`.
            reason = f"{error.cause or error}"
            if self._open_run is None and self._entering is not None:
                # A_ENTER gave up before answering: the stage run it may have started (and not
                # ended) is the one A_START_STAGE returns, which starts one otherwise.
                self._open_run = await self._control(A_START_STAGE, StageStartRequest(
                    run.execution, self._entering, self._now()), int)
            if self._open_run is not None:
                await self._stage_status(self._open_run, "failed", reason=reason)
            return await self._finish(run.execution, "failed", reason)

    async def _policy(self, run: ExecutionInput) -> PolicyAnswer:
        return await self._control(A_POLICY, PolicyRequest(run.execution, run.pipeline, run.repo, run.commit,
                                                           run.pipeline_path, self._now()), PolicyAnswer)

    async def _execute(self, run: ExecutionInput) -> ExecutionOutcome:
        if run.resume is not None:
            return await self._resumed(run, run.resume)
        if run.retry is not None:
            await self._control(A_RETRIED, RetryRecordRequest(run.execution, run.retry.stage, run.retry.actor,
                                                              run.retry.reason, self._now()))
        policy = await self._policy(run)
        while policy.gate.result == "wait":  # the org config or policies are being fixed
            await self._wait(run.poll_gates_seconds)
            if self._cancel is not None:
                return await self._cancelled_outside_stages(run)
            policy = await self._policy(run)
        if policy.gate.result != "pass" or policy.document is None:
            return await self._finish(run.execution, "failed", f"policy: {policy.gate.reason}")
        self._document = policy.document
        view = pipeline_view(policy.document)
        names = [stage.name for stage in view.stages]
        if run.retry is not None:
            if run.retry.stage not in names:
                return await self._finish(run.execution, "failed", f"retry: no stage {run.retry.stage}")
            artifact, first = run.retry.artifact, names.index(run.retry.stage)
        else:
            built = await self._build(run, view) if self._cancel is None else None
            if built is None:
                return await self._cancelled_outside_stages(run)
            if not built.ok or built.artifact is None:
                return await self._finish(run.execution, "failed", f"build: {built.reason}")
            artifact, first = built.artifact, 0
        return await self._stages(run, view, first, artifact)

    async def _stages(self, run: ExecutionInput, view: PipelineView, first: int, artifact: str,
                      resume: ResumeInput | None = None) -> ExecutionOutcome:
        """The stages from index `first` on (the first one picked up at `resume` when given)."""
        for index in range(first, len(view.stages)):
            last = index == len(view.stages) - 1
            status, reason = await self._stage(run, view.stages[index], artifact, last,
                                               resume if index == first else None)
            self._open_run = None
            if status != "succeeded":
                if self._finished is not None:  # the rollback recorded the execution's end
                    return self._finished
                return await self._finish(run.execution, status, reason)
        return await self._finish(run.execution, "succeeded", None)

    # ------------------------------------------------------------ continue-as-new

    async def _resumed(self, run: ExecutionInput, resume: ResumeInput) -> ExecutionOutcome:
        """A run continued as new: restore what the earlier run knew and pick up its stage run."""
        self._document = resume.document
        self._approvals = {stage: set(names) for stage, names in resume.approvals.items()}
        self._promotions = dict(resume.promotions)
        self._rejects = dict(resume.rejects)
        self._cancel = self._cancel or resume.cancel
        self._woken = {(pair[0], pair[1]) for pair in resume.woken}
        view = pipeline_view(resume.document)
        names = [stage.name for stage in view.stages]
        return await self._stages(run, view, names.index(resume.stage), resume.artifact, resume)

    def _continue_if_long(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str,
                          phase: str) -> None:
        """At a wait (nothing in flight), continue as new when the history has grown long, so a
        wait of days (an approval over a weekend) never reaches Temporal's history limit.
        Raises Temporal's continue-as-new exception, which ends this run."""
        info = workflow.info()
        if not (info.is_continue_as_new_suggested() or info.get_current_history_length() >= run.history_limit):
            return
        resume = ResumeInput(stage.name, run_id, artifact, phase, self._document,
                             {name: sorted(given) for name, given in self._approvals.items()},
                             dict(self._promotions), dict(self._rejects), self._cancel,
                             [[pair[0], pair[1]] for pair in sorted(self._woken)])
        workflow.continue_as_new(replace(run, retry=None, resume=resume))

    async def _build(self, run: ExecutionInput, view: PipelineView) -> BuildAnswer | None:
        """The build, cancelled (its process group killed by the activity) when `cancel` comes;
        None then."""
        build = view.build
        tests = [TestSpec(t.name, t.command, t.timeout_seconds) for t in build.tests]
        steps = len(build.commands) + len(tests)
        handle: ActivityHandle[BuildAnswer] = workflow.start_activity(
            A_BUILD, BuildRequest(run.execution, run.pipeline, run.repo, run.commit, run.pipeline_path,
                                  list(build.commands), tests, build.artifact, build.timeout_seconds),
            task_queue=self._prefix + TASK_QUEUE_BUILD, result_type=BuildAnswer, retry_policy=RETRY,
            heartbeat_timeout=HEARTBEAT_TIMEOUT, cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            start_to_close_timeout=timedelta(seconds=build.timeout_seconds * max(1, steps) + ACTIVITY_MARGIN_SECONDS))
        return await self._cancellable(handle)

    async def _cancellable(self, handle: ActivityHandle[T], *, tripwire: bool = False) -> T | None:
        """The activity's answer, or None when `cancel` came first (the activity is cancelled
        and waited for: its process group is gone when this returns). With `tripwire`, the
        alarms tripwire firing cancels it too (None; `_tripped` says why)."""
        def stopped() -> bool:
            return self._cancel is not None or (tripwire and self._tripped is not None)

        await workflow.wait_condition(lambda: handle.done() or stopped())
        if not handle.done():
            handle.cancel()
        try:
            answer = await handle
        except ActivityError as error:
            if stopped() and isinstance(error.cause, CancelledError):
                return None
            raise
        except asyncio.CancelledError:
            return None
        return None if self._cancel is not None else answer

    async def _cancelled_outside_stages(self, run: ExecutionInput) -> ExecutionOutcome:
        """`cancel` before the first stage (at the policy gate or during the build)."""
        assert self._cancel is not None
        await self._append(run.execution, run.pipeline, None, [
            EventSpec("cancelled", {"reason": self._cancel.reason}, "cancelled", actor=self._cancel.actor)])
        return await self._finish(run.execution, "cancelled", _cancel_reason(self._cancel))

    # ------------------------------------------------------------ a stage run

    async def _stage(self, run: ExecutionInput, stage: StageView, artifact: str, last: bool,
                     resume: ResumeInput | None = None) -> Ended:
        if resume is not None:
            self._open_run = resume.run_id
            if resume.phase == "promotion":
                return await self._promotion(run, stage, resume.run_id, artifact)
            run_id = resume.run_id
        elif workflow.patched(PATCH_STAGE_ENTRY):
            run_id = 0  # A_ENTER starts it
        else:
            run_id = await self._control(A_START_STAGE, StageStartRequest(run.execution, stage.name, self._now()),
                                         int)
        if workflow.patched(PATCH_STAGE_ENTRY):
            run_id, ended = await self._enter_in_one(run, stage, run_id, artifact)
        else:
            self._open_run = run_id
            ended = await self._enter(run, stage, run_id, artifact)
        if ended is not None:
            return ended
        hosts = list(stage.hosts)
        plan = stage_plan(stage)
        deploys = [DeployPart(target, stage, plan.hooks, artifact, run.commit) for target in plan.targets]
        self._tripped = None
        tripwire_done = [False]
        tripwire = None
        if stage.alarms and workflow.patched(PATCH_TRIPWIRE):
            tripwire = asyncio.create_task(self._tripwire(run, stage, run_id, tripwire_done))
        try:
            ended = await self._deploy_and_test(run, stage, run_id, artifact, deploys, hosts)
        finally:
            tripwire_done[0] = True
            if tripwire is not None:
                await tripwire
        if ended is None and self._tripped is not None:
            ended = await self._stage_failed(run, stage, run_id, artifact, "alarm",
                                             f"alarms: {self._tripped.reason}", triggered=self._tripped_at)
        if ended is not None:
            return ended
        deploy_finished = self._deploy_finished
        if workflow.patched(PATCH_BAKE_GATES):
            return await self._bake(run, stage, run_id, artifact, last, deploy_finished)
        await self._stage_status(run_id, "baking",
                                 events=[EventSpec("bake_started", {"duration_s": stage.bake_seconds}, "bake_started")])
        if stage.bake_seconds > 0:
            await self._sleep_unless_cancelled(stage.bake_seconds)
        while True:
            if self._cancel is not None:
                return await self._cancel_run(run_id, [EventSpec(
                    "bake_finished", {"result": "cancelled", "reason": _cancel_reason(self._cancel)}, "bake_finished")])
            bake = await self._control(A_BAKE_GATE, BakeGateRequest(run_id, stage.bake_seconds,
                                                                     stage.bake_deadline_seconds, self._now()),
                                       GateAnswer)
            if bake.result == "pass":
                break
            if bake.result == "fail":
                return await self._stage_failed(run, stage, run_id, artifact, "deadline", bake.reason,
                                                bake_failed=True)
            await self._sleep_unless_cancelled(self._wait_seconds([bake], run.poll_gates_seconds))
        return await self._baked(run, stage, run_id, artifact, last, bake.reason)

    async def _tripwire(self, run: ExecutionInput, stage: StageView, run_id: int, done: list[bool]) -> None:
        """Every poll.gates until `done[0]`: the stage's alarms as a tripwire; on a `fail` (an
        alarm firing, not overridden) no new hook starts and the stage fails after the hooks
        running finish (trigger `alarm`)."""
        while not done[0]:
            now = self._now()
            answer = await self._control(A_TRIPWIRE, TripwireRequest(
                run_id, run.pipeline, run.commit, stage.name, now, run.poll_gates_seconds,
                halt_key(run.execution, run_id, rollback=False)), GateAnswer)
            if answer.result == "fail":
                self._tripped, self._tripped_at = answer, parse_time(now)
                self._stop = True
                return
            try:
                await workflow.wait_condition(lambda: done[0] or self._wake,
                                              timeout=timedelta(seconds=run.poll_gates_seconds))
            except TimeoutError:
                pass
            self._wake = False

    async def _deploy_and_test(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str,
                               deploys: list[DeployPart], hosts: list[str]) -> Ended | None:
        """The deploy and the stage's tests; None when both passed (`_deploy_finished` set)."""
        ok = await self._deploy(run, deploys, hosts, rollback=False, run_id=run_id)
        self._deploy_finished = workflow.now()
        if self._cancel is not None:
            return await self._cancel_run(run_id)  # running hooks have finished; no rollback
        if self._tripped is not None:
            return None  # the tripwire fails the stage (the caller)
        if not ok:
            return await self._stage_failed(run, stage, run_id, artifact, "hook", self._failure or "a hook failed")
        if stage.tests:
            await self._stage_status(run_id, "testing")
            try:
                answer = await self._tests(run, stage, artifact, hosts)
            except ActivityError as error:
                # The tests could not be run at all (retries spent): the stage failed its tests,
                # so it rolls back like one whose tests failed.
                return await self._stage_failed(run, stage, run_id, artifact, "tests",
                                                f"tests could not run: {error.cause or error}")
            if answer is None:
                if self._cancel is None and self._tripped is not None:
                    return None  # the tripwire cut the tests short: it fails the stage (the caller)
                return await self._cancel_run(run_id)
            if not answer.ok:
                return await self._stage_failed(run, stage, run_id, artifact, "tests",
                                                f"tests failed: {', '.join(answer.failed)}")
        return None

    async def _bake(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str, last: bool,
                    deploy_finished: datetime) -> Ended:
        """The bake (issue 14): a round of its gates (A_BAKE_GATES: bake_time, datapoints, the
        alarms tripwire, the deadline over the whole bake) at its start and then every poll.gates
        (with bake_time alone and no deadline: once bake.duration has passed, as before issue 14),
        until all pass or one fails (the stage fails: trigger `datapoints`, `alarm` or `deadline`).
        With PATCH_BAKE_ROUND each round is one A_BAKE_ROUND activity, which also writes `baking`
        on the first round (unless a timer comes first) and the run's next status once all pass."""
        in_one = workflow.patched(PATCH_BAKE_ROUND)
        # Asked here, at the bake's start, rather than at its failure: a patch's marker and search
        # attribute are two more events, and when 100 bakes fail at once they would come then.
        self._rollback_finishes = workflow.patched(PATCH_ROLLBACK_FINISHES)
        watching = stage.datapoints is not None or bool(stage.alarms) or stage.bake_deadline_seconds is not None
        timer = not watching and stage.bake_seconds > 0
        started = False
        if not in_one or timer:
            await self._stage_status(run_id, "baking", events=[
                EventSpec("bake_started", {"duration_s": stage.bake_seconds}, "bake_started")])
            started = True
        if timer:
            # bake_time alone cannot pass before bake.duration: one timer, then one round
            await self._sleep_unless_cancelled(stage.bake_seconds)
        passed_status = "awaiting_promotion" if stage.promotion == "manual" and not last else "succeeded"
        if in_one and watching and workflow.patched(PATCH_BAKE_STAGE):
            # Asked at the bake's start too, and only where it can matter (no marker otherwise).
            rolls_back = (stage.rollback == "automatic" and self._rollback_finishes
                          and workflow.patched(PATCH_BAKE_ROLLS_BACK))
            return await self._bake_in_activity(run, stage, run_id, artifact, deploy_finished, passed_status,
                                                None if started else stage.bake_seconds, rolls_back)
        while True:
            if self._cancel is not None:
                return await self._cancel_run(run_id, [EventSpec(
                    "bake_finished", {"result": "cancelled", "reason": _cancel_reason(self._cancel)}, "bake_finished")]
                    if started else [])
            now = self._now()
            request = BakeGatesRequest(run_id, run.execution, run.pipeline, run.repo, run.commit, artifact,
                                       stage.name, format_time(deploy_finished), now, run.poll_gates_seconds)
            if in_one:
                gates = await workflow.execute_activity(
                    A_BAKE_ROUND, BakeRoundRequest(request, [t.name for t in stage.targets], passed_status,
                                                   None if started else stage.bake_seconds),
                    task_queue=self._prefix + TASK_QUEUE_CONTROL, result_type=list[GateAnswer],
                    start_to_close_timeout=BAKE_GATES_TIMEOUT, retry_policy=RETRY)
                started = True
            else:
                gates = await workflow.execute_activity(
                    A_BAKE_GATES, request, task_queue=self._prefix + TASK_QUEUE_CONTROL,
                    result_type=list[GateAnswer], start_to_close_timeout=BAKE_GATES_TIMEOUT, retry_policy=RETRY)
            failure = bake_failure(gates)
            if failure is not None:
                trigger, reason = failure
                return await self._stage_failed(run, stage, run_id, artifact, trigger, reason, bake_failed=True,
                                                triggered=parse_time(now))
            waiting = [gate for gate in gates if gate.result == "wait"]
            if not waiting:
                break
            seconds = self._wait_seconds(waiting, run.poll_gates_seconds)
            await self._bake_wait(min(seconds, run.poll_gates_seconds) if watching else seconds)
        if in_one:  # the round recorded the bake passed and moved the run on
            if passed_status == "awaiting_promotion":
                return await self._promotion(run, stage, run_id, artifact)
            return "succeeded", None
        return await self._baked(run, stage, run_id, artifact, last, "; ".join(gate.reason for gate in gates))

    async def _bake_in_activity(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str,
                                deploy_finished: datetime, passed_status: str, start_seconds: int | None,
                                rolls_back: bool = False) -> Ended:
        """The bake's rounds inside A_BAKE activities (patch PATCH_BAKE_STAGE): each judges a
        round every poll.gates on its own and answers once a gate fails or all pass (the run then
        moved on), or after BAKE_SPAN_SECONDS still waiting (the next one goes on). `cancel`
        stops waiting for it at once: the run is cancelled here, and the activity, asked to stop,
        records nothing more once the run has left `baking`. A `wake` replaces it with a new one,
        which judges at once. With `rolls_back` (PATCH_BAKE_ROLLS_BACK) a failed round's rollback
        runs inside the activity, which answers how the execution ended; a rollback started by a
        bake activity this workflow stopped waiting for is waited for (A_ROLL_BACK `adopt`), and
        `cancel` cancels the run only when no such rollback got there first."""
        while True:
            request = BakeRoundRequest(
                BakeGatesRequest(run_id, run.execution, run.pipeline, run.repo, run.commit, artifact, stage.name,
                                 format_time(deploy_finished), self._now(), run.poll_gates_seconds),
                [t.name for t in stage.targets], passed_status, start_seconds, rolls_back)
            answer = await self._bake_activity(request)
            if answer is None and self._cancel is None:
                continue  # woken: a new activity judges the gates at once
            if answer is not None and answer.finished is not None:  # rolled back, execution ended
                self._finished = answer.finished
                return answer.finished.status, answer.finished.reason
            if answer is None or (self._cancel is not None and not answer.decided):
                assert self._cancel is not None
                cancelled = [EventSpec("bake_finished", {"result": "cancelled",
                                                         "reason": _cancel_reason(self._cancel)}, "bake_finished")]
                if not rolls_back:
                    return await self._cancel_run(run_id, cancelled)
                found = await self._cancel_run_unless_rolling_back(run_id, cancelled)
                if found in ("rolling_back", "rolled_back", "failed"):  # its bake's rollback came first
                    return await self._adopt_rollback(run, stage, run_id, artifact)
                return "cancelled", _cancel_reason(self._cancel)
            start_seconds = None
            if not answer.decided and answer.left is not None:  # ended outside the bake: do not start another
                if rolls_back and answer.left == "rolling_back":
                    return await self._adopt_rollback(run, stage, run_id, artifact)
                return ("cancelled" if answer.left == "cancelled" else "failed",
                        f"{stage.name}: the stage run was ended outside its bake ({answer.left})")
            failure = bake_failure(answer.gates)
            if failure is not None:
                trigger, reason = failure
                return await self._stage_failed(run, stage, run_id, artifact, trigger, reason, bake_failed=True,
                                                triggered=parse_time(answer.now))
            if answer.decided:  # every gate passed: the activity recorded it and moved the run on
                if passed_status == "awaiting_promotion":
                    return await self._promotion(run, stage, run_id, artifact)
                return "succeeded", None

    async def _bake_activity(self, request: BakeRoundRequest) -> BakeAnswer | None:
        """One A_BAKE: its answer, or None when `cancel` or a `wake` (an override, an alarm that
        changed, seen by a process whose bakes this one's wake-ups do not reach) came first: it is
        then asked to stop and not waited for (TRY_CANCEL). A decided answer wins over either."""
        handle: ActivityHandle[BakeAnswer] = workflow.start_activity(
            A_BAKE, request, task_queue=self._prefix + TASK_QUEUE_BAKE, result_type=BakeAnswer,
            retry_policy=RETRY, heartbeat_timeout=HEARTBEAT_TIMEOUT,
            # a bake that rolls back runs the rollback inside: A_ROLL_BACK's bound on top
            start_to_close_timeout=timedelta(seconds=BAKE_SPAN_SECONDS) + (
                ROLLBACK_TIMEOUT if request.rolls_back else BAKE_GATES_TIMEOUT),
            cancellation_type=ActivityCancellationType.TRY_CANCEL)
        self._wake = False
        await workflow.wait_condition(lambda: handle.done() or self._cancel is not None or self._wake)
        self._wake = False
        if not handle.done():
            handle.cancel()
            try:  # TRY_CANCEL: resolved at once, without waiting for the activity
                await handle
            except (ActivityError, asyncio.CancelledError):
                pass
            return None
        return await handle

    async def _baked(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str, last: bool,
                     reason: str) -> Ended:
        await self._control(A_BAKE_PASSED, BakePassedRequest(run_id, [t.name for t in stage.targets], self._now()))
        baked = EventSpec("bake_finished", {"result": "succeeded", "reason": reason}, "bake_finished")
        if stage.promotion == "manual" and not last:
            await self._stage_status(run_id, "awaiting_promotion", events=[baked])
            return await self._promotion(run, stage, run_id, artifact)
        await self._stage_status(run_id, "succeeded", events=[baked])
        return "succeeded", None

    async def _promotion(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str) -> Ended:
        """Awaiting promotion at `stage` until `promote` (the run succeeds) or an end."""
        ended = await self._await_promotion(run, stage, run_id, artifact)
        if ended is not None:
            return ended
        signal = self._promotions[stage.name]
        await self._stage_status(run_id, "succeeded", events=[EventSpec(
            "promoted", {"reason": signal.reason, "approval": None}, "promoted", actor=signal.actor)])
        await self._refuse_late_reject(run, stage.name)
        return "succeeded", None

    async def _enter(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str) -> Ended | None:
        """Wait at the entry until every gate passes and the stage is claimed (None), or end the
        run there: a gate `fail`, `reject`, `cancel`, or superseded."""
        while True:
            ended = await self._ended_at_entry(stage, run_id)
            if ended is not None:
                return ended
            rivals = await self._control(A_RIVALS, RivalsRequest(run_id), RivalsAnswer)
            if rivals.newer_deployed is not None:
                return await self._superseded(run_id, stage, rivals.newer_deployed, "it has deployed the stage")
            if rivals.newer_waiting is not None:
                return await self._superseded(run_id, stage, rivals.newer_waiting, "it waits at the stage's entry")
            await self._wake_all(stage.name, rivals.older_waiting)
            gates = await self._control(A_ENTRY_GATES, EntryGatesRequest(
                run_id, run.execution, run.pipeline, run.repo, run.commit, run.pipeline_path, stage.name,
                list(stage.approvals), sorted(self._approvals.get(stage.name, set())), self._now(),
                run.poll_gates_seconds), list[GateAnswer])
            failed = [gate for gate in gates if gate.result == "fail"]
            if failed:
                reason = f"{failed[0].gate}: {failed[0].reason}"
                await self._stage_status(run_id, "failed", reason=reason)
                return "failed", f"{stage.name}: {reason}"
            waiting = [gate for gate in gates if gate.result == "wait"]
            if waiting:
                self._continue_if_long(run, stage, run_id, artifact, "entry")
                await self._wait(self._wait_seconds(waiting, run.poll_gates_seconds))
                continue
            ended = await self._ended_at_entry(stage, run_id)
            if ended is not None:
                return ended
            claim = await self._control(A_CLAIM, ClaimRequest(
                run_id, "deploying", self._now(), artifact=artifact,
                events=[EventSpec("stage_started", {"artifact": artifact}, "stage_started")]), ClaimAnswer)
            if claim.result == "superseded" and claim.by is not None:
                return await self._superseded(run_id, stage, claim.by, "it came first to the stage")
            if claim.result != "claimed":  # another execution took the stage since the gates
                await self._wait(run.poll_gates_seconds)
                continue
            await self._wake_all(stage.name, claim.older_awaiting)
            await self._refuse_late_reject(run, stage.name)
            return None

    async def _enter_in_one(self, run: ExecutionInput, stage: StageView, run_id: int,
                            artifact: str) -> tuple[int, Ended | None]:
        """`_enter` with one A_ENTER activity per round (start the run on the first round when
        `run_id` is 0, rivals, gates, and the claim when every gate passes). The run's id, and
        None once the stage is claimed or how the run ended."""
        while True:
            if run_id:
                ended = await self._ended_at_entry(stage, run_id)
                if ended is not None:
                    return run_id, ended
            self._entering = stage.name
            entry = await self._control(A_ENTER, StageEntryRequest(EntryGatesRequest(
                run_id, run.execution, run.pipeline, run.repo, run.commit, run.pipeline_path, stage.name,
                list(stage.approvals), sorted(self._approvals.get(stage.name, set())), self._now(),
                run.poll_gates_seconds), artifact, start=not run_id), StageEntryAnswer)
            run_id = self._open_run = entry.run_id
            self._entering = None
            rivals = entry.rivals
            if rivals.newer_deployed is not None:
                return run_id, await self._superseded(run_id, stage, rivals.newer_deployed,
                                                      "it has deployed the stage")
            if rivals.newer_waiting is not None:
                return run_id, await self._superseded(run_id, stage, rivals.newer_waiting,
                                                      "it waits at the stage's entry")
            await self._wake_all(stage.name, rivals.older_waiting)
            failed = [gate for gate in entry.gates if gate.result == "fail"]
            if failed:
                reason = f"{failed[0].gate}: {failed[0].reason}"
                await self._stage_status(run_id, "failed", reason=reason)
                return run_id, ("failed", f"{stage.name}: {reason}")
            waiting = [gate for gate in entry.gates if gate.result == "wait"]
            if waiting or entry.claim is None:
                self._continue_if_long(run, stage, run_id, artifact, "entry")
                await self._wait(self._wait_seconds(waiting, run.poll_gates_seconds))
                continue
            claim = entry.claim
            if claim.result == "superseded" and claim.by is not None:
                return run_id, await self._superseded(run_id, stage, claim.by, "it came first to the stage")
            if claim.result != "claimed":  # another execution took the stage since the gates
                await self._wait(run.poll_gates_seconds)
                continue
            await self._wake_all(stage.name, claim.older_awaiting)
            await self._refuse_late_reject(run, stage.name)
            return run_id, None

    async def _ended_at_entry(self, stage: StageView, run_id: int) -> Ended | None:
        if self._cancel is not None:
            return await self._cancel_run(run_id)
        reject = self._rejects.pop(stage.name, None)
        if reject is not None:
            return await self._reject_run(run_id, stage, reject)
        return None

    async def _await_promotion(self, run: ExecutionInput, stage: StageView, run_id: int,
                               artifact: str) -> Ended | None:
        """Until `promote` names this stage (None), or `cancel`, `reject`, or a newer execution
        passes this stage's entry gates (superseded)."""
        while stage.name not in self._promotions:
            if self._cancel is not None:
                return await self._cancel_run(run_id)
            reject = self._rejects.pop(stage.name, None)
            if reject is not None:
                return await self._reject_run(run_id, stage, reject)
            rivals = await self._control(A_RIVALS, RivalsRequest(run_id), RivalsAnswer)
            if rivals.newer_deployed is not None:
                return await self._superseded(run_id, stage, rivals.newer_deployed, "it passed the stage's entry")
            self._continue_if_long(run, stage, run_id, artifact, "promotion")
            await self._wait(PROMOTION_RECHECK_SECONDS)
        return None

    async def _tests(self, run: ExecutionInput, stage: StageView, artifact: str, hosts: list[str]) -> TestsAnswer | None:
        tests = [TestSpec(t.name, t.command, t.timeout_seconds) for t in stage.tests]
        handle: ActivityHandle[TestsAnswer] = workflow.start_activity(
            A_TESTS, TestsRequest(run.execution, run.pipeline, run.repo, artifact, run.commit, stage.name, hosts,
                                  tests, production_config(stage)),
            task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=TestsAnswer, retry_policy=RETRY,
            heartbeat_timeout=HEARTBEAT_TIMEOUT, cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            start_to_close_timeout=timedelta(seconds=sum(t.timeout_seconds for t in tests) + ACTIVITY_MARGIN_SECONDS))
        return await self._cancellable(handle, tripwire=True)

    # ------------------------------------------------------------ how a stage run ends early

    async def _cancel_run_unless_rolling_back(self, run_id: int, events: list[EventSpec]) -> str | None:
        """`_cancel_run`'s write unless the run is `rolling_back` or ended (a bake's own rollback
        got there first): None when cancelled, else the status found."""
        assert self._cancel is not None
        found: str | None = await self._control(A_STAGE_STATUS, StageStatusRequest(
            run_id, "cancelled", self._now(), _cancel_reason(self._cancel), None, [
                *events, EventSpec("cancelled", {"reason": self._cancel.reason}, "cancelled",
                                   actor=self._cancel.actor)], unless_rolling_back=True))
        return found

    async def _adopt_rollback(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str) -> Ended:
        """The end of a rollback that a bake activity started (PATCH_BAKE_ROLLS_BACK) which this
        workflow no longer waits for (it replaced or cancelled that activity): A_ROLL_BACK with
        `adopt` waits for it in its process, or finds its end in the store, or carries it on."""
        now = self._now()
        answer = await workflow.execute_activity(
            A_ROLL_BACK, StageRollbackRequest(run_id, run.execution, run.pipeline, run.repo, stage.name, artifact,
                                              "", "", now, now, [], True, adopt=True),
            task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=StageRollbackAnswer, retry_policy=RETRY,
            heartbeat_timeout=HEARTBEAT_TIMEOUT, start_to_close_timeout=ROLLBACK_TIMEOUT)
        self._finished = ExecutionOutcome(answer.outcome, answer.ended)  # `finish`: the reason it ended with
        return answer.outcome, answer.ended

    async def _cancel_run(self, run_id: int, events: list[EventSpec] | None = None) -> Ended:
        assert self._cancel is not None
        reason = _cancel_reason(self._cancel)
        await self._stage_status(run_id, "cancelled", reason=reason, events=[
            *(events or []), EventSpec("cancelled", {"reason": self._cancel.reason}, "cancelled",
                                       actor=self._cancel.actor)])
        return "cancelled", reason

    async def _reject_run(self, run_id: int, stage: StageView, signal: RejectSignal) -> Ended:
        reason = f"rejected by {signal.actor}" + (f": {signal.reason}" if signal.reason else "")
        await self._stage_status(run_id, "failed", reason=reason, events=[
            EventSpec("rejected", {"reason": signal.reason, "approval": None}, "rejected", actor=signal.actor)])
        return "failed", f"{stage.name}: {reason}"

    async def _superseded(self, run_id: int, stage: StageView, by: str, why: str) -> Ended:
        reason = f"superseded by {by}: {why}"
        await self._stage_status(run_id, "cancelled", reason=reason, events=[
            EventSpec("superseded", {"reason": why, "by": by}, "superseded")])
        return "superseded", f"{stage.name}: {reason}"

    async def _refuse_late_reject(self, run: ExecutionInput, stage: str) -> None:
        """A `reject` of this stage that came after its run left the entry (the client saw it
        waiting): answered with a `refused` event, as the client would have."""
        signal = self._rejects.pop(stage, None)
        if signal is not None:
            await self._append(run.execution, run.pipeline, stage, [EventSpec(
                "refused", {"action": "reject", "reason": f"execution {run.execution} left the entry of {stage} "
                            "before the reject arrived"}, "refused-reject", actor=signal.actor)])

    async def _wake_all(self, stage: str, executions: list[str]) -> None:
        """Wake executions this one supersedes at `stage` (once each), so they see it at once."""
        for execution in executions:
            if (stage, execution) in self._woken:
                continue
            self._woken.add((stage, execution))
            try:
                await workflow.get_external_workflow_handle(execution).signal(SIGNAL_WAKE)
            except Exception as error:  # noqa: BLE001 - it has ended meanwhile: nothing to wake
                workflow.logger.info("no wake-up for %s: %s", execution, error)

    # ------------------------------------------------------------ waiting

    def _wait_seconds(self, waiting: list[GateAnswer], poll: int) -> float:
        """Until the latest `until` when every waiting gate knows one (nothing passes before), else
        one poll interval; at least one second."""
        return next_round_seconds([None if gate.until is None else parse_time(gate.until) for gate in waiting],
                                  workflow.now(), poll)

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, woken early by a signal. A signal that came while the workflow was
        busy (in an activity) ends the next wait at once: the flag is cleared after waiting."""
        try:
            await workflow.wait_condition(lambda: self._wake, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            pass
        self._wake = False

    async def _bake_wait(self, seconds: float) -> None:
        """A bake round's wait: ended early by `cancel` or a `wake` (the alarm evaluator saw the
        stage's alarms change, an override), so the next round judges it at once."""
        try:
            await workflow.wait_condition(lambda: self._cancel is not None or self._wake,
                                          timeout=timedelta(seconds=seconds))
        except TimeoutError:
            pass
        self._wake = False

    async def _sleep_unless_cancelled(self, seconds: float) -> None:
        try:
            await workflow.wait_condition(lambda: self._cancel is not None, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            pass

    # ------------------------------------------------------------ failure and automatic rollback

    async def _stage_failed(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str, trigger: str,
                            reason: str, *, bake_failed: bool = False, triggered: datetime | None = None) -> Ended:
        """`triggered`: when the trigger was observed (the `now` of the gate round that failed,
        in its `gate` event's inputs), which `rollback_finished`'s duration_ms counts from; now
        when not given (a hook or a test just failed)."""
        events = [EventSpec("bake_finished", {"result": "failed", "reason": reason}, "bake_finished")] \
            if bake_failed else []
        if stage.rollback != "automatic":
            await self._stage_status(run_id, "failed", reason=reason, events=events)
            return "failed", f"{stage.name}: {reason}"
        triggered = workflow.now() if triggered is None else triggered
        if workflow.patched(PATCH_STAGE_ROLLBACK):
            # One activity from the failure to the end of the rollback (A_ROLL_BACK). When every
            # attempt fails, run() closes the stage run and the execution `failed` with its error.
            # After a failed bake nothing else runs in the stage: the activity also ends the
            # execution (a hook's or a test's failure waits for the tripwire first).
            finish = bake_failed and self._rollback_finishes
            answer = await workflow.execute_activity(
                A_ROLL_BACK, StageRollbackRequest(run_id, run.execution, run.pipeline, run.repo, stage.name, artifact,
                                                  reason, trigger, format_time(triggered), self._now(), events,
                                                  finish),
                task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=StageRollbackAnswer, retry_policy=RETRY,
                heartbeat_timeout=HEARTBEAT_TIMEOUT, start_to_close_timeout=ROLLBACK_TIMEOUT)
            ended = rolled_back_reason(stage.name, reason, answer.restored_to)
            if finish:
                self._finished = ExecutionOutcome(answer.outcome, ended)
            return answer.outcome, ended
        plan = await self._control(A_ROLLBACK_PLAN, RollbackPlanRequest(run.pipeline, stage.name, artifact),
                                   RollbackPlanAnswer)
        await self._stage_status(run_id, "rolling_back", reason=reason,
                                 events=[*events, rollback_started(plan, trigger, "engine")])
        outcome, restored_to = await self._rollback(run, stage.name, run_id, artifact, plan, triggered)
        return outcome, rolled_back_reason(stage.name, reason, restored_to)


@workflow.defn(name=WORKFLOW_ROLLBACK)
class RollbackWorkflow(_Releaser):
    """A manual `rollback PIPELINE --stage S [--to A] [--no-pause]` (engine.md, "Rollback"):
    check `to`; pause the pipeline; cancel the execution occupying S and the one that deployed the
    artifact being replaced (they start nothing new; their running hooks finish); once neither
    runs and S is free, take S (the deployer's stage run goes `rolling_back`) and redeploy each
    touched host to its target's last good artifact (or `to`) with that artifact's own hooks and
    batching; the deployer's execution ends `rolled_back` or `failed`, whatever it was."""

    @workflow.run
    async def run(self, request: RollbackInput) -> ExecutionOutcome:
        self._prefix = request.queue_prefix
        triggered = workflow.now()  # the rollback's time counts from the request, waits included
        context = ExecutionInput(request.deployer, request.pipeline, request.repo, "", "",
                                 request.poll_gates_seconds, request.queue_prefix)
        ask = RollbackPlanRequest(request.pipeline, request.stage, request.replacing, request.to)
        plan = await self._control(A_ROLLBACK_PLAN, ask, RollbackPlanAnswer)
        if plan.refused is not None:
            return await self._refuse(request, plan.refused)
        if request.pause:
            await self._control(A_PAUSE, PauseRequest(request.pipeline, request.actor, request.reason, self._now()))
        cancel = CancelSignal(request.actor, f"rollback of {request.stage}" + (
            f": {request.reason}" if request.reason else ""))
        targets = list(request.cancel)
        signalled: set[str] = set()
        while True:
            blockers = await self._control(A_BLOCKERS, BlockersRequest(
                request.pipeline, request.stage, targets, request.deployer, request.run_id), BlockersAnswer)
            if blockers.run_status == "rolled_back":
                return await self._refuse(request, f"{request.replacing} was rolled back from {request.stage} "
                                          "meanwhile (an automatic rollback)")
            waiting = list(blockers.executions)
            if not waiting:
                plan = await self._control(A_ROLLBACK_PLAN, ask, RollbackPlanAnswer)
                claim = await self._control(A_CLAIM, ClaimRequest(
                    request.run_id, "rolling_back", self._now(), reason=cancel.reason,
                    events=[rollback_started(plan, "manual", request.actor)]), ClaimAnswer)
                if claim.result == "claimed":
                    break
                if claim.result == "illegal":
                    return await self._refuse(request, claim.by or "the stage run cannot be rolled back now")
                waiting = [claim.by] if claim.by else []
            for execution in waiting:
                if execution not in targets:
                    targets.append(execution)
                if execution not in signalled:
                    signalled.add(execution)
                    try:
                        await workflow.get_external_workflow_handle(execution).signal(SIGNAL_CANCEL, cancel)
                    except Exception as error:  # noqa: BLE001 - it ended meanwhile: nothing to cancel
                        workflow.logger.info("no cancel for %s: %s", execution, error)
            await workflow.sleep(request.poll_gates_seconds)
        outcome, restored_to = await self._rollback(context, request.stage, request.run_id, request.replacing, plan,
                                                    triggered)
        reason = f"{request.stage}: rolled back by {request.actor} ({restored_to})"
        return await self._finish(request.deployer, outcome, reason)

    async def _refuse(self, request: RollbackInput, reason: str) -> ExecutionOutcome:
        await self._append(request.deployer, request.pipeline, request.stage, [EventSpec(
            "refused", {"action": "rollback", "reason": reason}, "refused", actor=request.actor)])
        return ExecutionOutcome("refused", reason)


def _deploy_seconds(deploys: list[DeployPart]) -> int:
    """The longest a deploy can take when no host waits for a lease (its slowest target)."""
    return max(deploy.longest_seconds for deploy in deploys)


def _cancel_reason(signal: CancelSignal) -> str:
    return f"cancelled by {signal.actor}" + (f": {signal.reason}" if signal.reason else "")
