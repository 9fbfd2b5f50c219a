"""`ExecutionWorkflow`: one execution of one artifact (engine.md, "Executions", "A stage run").

policy gate -> build -> for each stage: entry gates (policy, approval, stage_busy, paused) ->
deploy (targets in parallel, batches in order under min_healthy, hooks stop/install/start/validate
in order on each host; after the first failed host no new batch and no new hook starts anywhere)
-> stage tests -> bake (a durable timer, then the bake_time gate) -> promotion (automatic, or
manual by signal) ; a failed hook or test with `rollback: automatic` rolls the stage back to each
target's last good artifact, with the hooks of that artifact's own definition.

Deterministic: the clock is `workflow.now()`, waits are timers and conditions, and everything
that touches the world (git, processes, the store) is an activity named in `contract.py`. The
definition followed is the `pipeline.yaml` of the execution's own commit, read by the policy
activity and turned into the typed view here (a pure function).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pipewarden.engine.contract import (
        A_BAKE_GATE,
        A_BAKE_PASSED,
        A_BUILD,
        A_ENTRY_GATES,
        A_EXECUTION_STATUS,
        A_HOOK,
        A_POLICY,
        A_ROLLBACK_PLAN,
        A_ROLLED_BACK,
        A_STAGE_STATUS,
        A_START_STAGE,
        A_TESTS,
        SIGNAL_APPROVE,
        SIGNAL_PROMOTE,
        SIGNAL_WAKE,
        TASK_QUEUE_BUILD,
        TASK_QUEUE_CONTROL,
        TASK_QUEUE_DEPLOY,
        WORKFLOW_EXECUTION,
        ApproveSignal,
        BakeGateRequest,
        BakePassedRequest,
        BuildAnswer,
        BuildRequest,
        EntryGatesRequest,
        EventSpec,
        ExecutionInput,
        ExecutionOutcome,
        ExecutionStatusRequest,
        GateAnswer,
        HookAnswer,
        HookRequest,
        PolicyAnswer,
        PolicyRequest,
        PromoteSignal,
        RollbackPlanAnswer,
        RollbackPlanRequest,
        RolledBackRequest,
        StageStartRequest,
        StageStatusRequest,
        TestsAnswer,
        TestSpec,
        TestsRequest,
    )
    from pipewarden.engine.domain.ids import format_time, parse_time
    from pipewarden.engine.domain.plan import TargetPlan, hook_order, stage_plan
    from pipewarden.engine.domain.rollback import TargetRollback, rollback_batches, rollback_outcome
    from pipewarden.engine.domain.status import ExecutionStatus
    from pipewarden.model.view import HookView, PipelineView, StageView, pipeline_view

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


@dataclass
class _Deploy:
    """One target's part of a deploy or rollback: its batches and the artifact they install."""

    plan: TargetPlan
    stage: StageView
    hooks: tuple[HookView, ...]
    artifact: str
    commit: str


@workflow.defn(name=WORKFLOW_EXECUTION)
class ExecutionWorkflow:
    def __init__(self) -> None:
        self._approvals: dict[str, set[str]] = {}
        self._promoted: set[str] = set()
        self._promotions: dict[str, PromoteSignal] = {}
        self._wake = False
        self._stop = False
        self._prefix = ""
        self._open_run: int | None = None

    # ------------------------------------------------------------ signals

    @workflow.signal(name=SIGNAL_APPROVE)
    def approve(self, signal: ApproveSignal) -> None:
        # The client has written the `approved` event (the entry gates count the store's); the
        # signal only wakes the gates, and is remembered so the next evaluation sees it at once.
        self._approvals.setdefault(signal.stage, set()).add(signal.approval)
        self._wake = True

    @workflow.signal(name=SIGNAL_WAKE)
    def wake(self) -> None:
        """Something the gates read changed (pause, resume, an override, a rival execution)."""
        self._wake = True

    @workflow.signal(name=SIGNAL_PROMOTE)
    def promote(self, signal: PromoteSignal) -> None:
        self._promoted.add(signal.stage)
        self._promotions[signal.stage] = signal
        self._wake = True

    # ------------------------------------------------------------ helpers

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
            if self._open_run is not None:
                await self._stage_status(self._open_run, "failed", reason=reason)
            return await self._finish(run.execution, "failed", reason)

    async def _execute(self, run: ExecutionInput) -> ExecutionOutcome:
        policy = await self._control(A_POLICY, PolicyRequest(run.execution, run.pipeline, run.repo, run.commit,
                                                             run.pipeline_path, self._now()), PolicyAnswer)
        while policy.gate.result == "wait":  # the org config or policies are being fixed
            await workflow.sleep(run.poll_gates_seconds)
            policy = await self._control(A_POLICY, PolicyRequest(run.execution, run.pipeline, run.repo, run.commit,
                                                                 run.pipeline_path, self._now()), PolicyAnswer)
        if policy.gate.result != "pass" or policy.document is None:
            return await self._finish(run.execution, "failed", f"policy: {policy.gate.reason}")
        view = pipeline_view(policy.document)
        build = view.build
        tests = [TestSpec(t.name, t.command, t.timeout_seconds) for t in build.tests]
        steps = len(build.commands) + len(tests)
        built = await workflow.execute_activity(
            A_BUILD, BuildRequest(run.execution, run.pipeline, run.repo, run.commit, run.pipeline_path,
                                  list(build.commands), tests, build.artifact, build.timeout_seconds),
            task_queue=self._prefix + TASK_QUEUE_BUILD, result_type=BuildAnswer, retry_policy=RETRY,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            start_to_close_timeout=timedelta(seconds=build.timeout_seconds * max(1, steps) + ACTIVITY_MARGIN_SECONDS))
        if not built.ok or built.artifact is None:
            return await self._finish(run.execution, "failed", f"build: {built.reason}")
        for index, stage in enumerate(view.stages):
            last = index == len(view.stages) - 1
            status, reason = await self._stage(run, view, stage, built.artifact, last)
            self._open_run = None
            if status != "succeeded":
                return await self._finish(run.execution, status, reason)
        return await self._finish(run.execution, "succeeded", None)

    # ------------------------------------------------------------ a stage run

    async def _stage(self, run: ExecutionInput, view: PipelineView, stage: StageView, artifact: str,
                     last: bool) -> tuple[str, str | None]:
        run_id = await self._control(A_START_STAGE, StageStartRequest(run.execution, stage.name, self._now()), int)
        self._open_run = run_id
        while True:
            gates = await self._control(A_ENTRY_GATES, EntryGatesRequest(
                run_id, run.execution, run.pipeline, run.repo, run.commit, run.pipeline_path, stage.name,
                list(stage.approvals), sorted(self._approvals.get(stage.name, set())), self._now()), list[GateAnswer])
            failed = [gate for gate in gates if gate.result == "fail"]
            if failed:
                reason = f"{failed[0].gate}: {failed[0].reason}"
                await self._stage_status(run_id, "failed", reason=reason)
                return "failed", reason
            waiting = [gate for gate in gates if gate.result == "wait"]
            if not waiting:
                break
            await self._wait(self._wait_seconds(waiting, run.poll_gates_seconds))
        hosts = [host for target in stage.targets for host in target.hosts]
        await self._stage_status(run_id, "deploying", artifact=artifact,
                                 events=[EventSpec("stage_started", {"artifact": artifact}, "stage_started")])
        plan = stage_plan(stage)
        deploys = [_Deploy(target, stage, plan.hooks, artifact, run.commit) for target in plan.targets]
        if not await self._deploy(run, deploys, hosts, rollback=False):
            return await self._stage_failed(run, stage, run_id, artifact, "hook", "a hook failed")
        if stage.tests:
            await self._stage_status(run_id, "testing")
            tests = [TestSpec(t.name, t.command, t.timeout_seconds) for t in stage.tests]
            answer = await workflow.execute_activity(
                A_TESTS, TestsRequest(run.execution, run.pipeline, run.repo, artifact, run.commit, stage.name, hosts,
                                      tests, _production(stage)),
                task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=TestsAnswer, retry_policy=RETRY,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                start_to_close_timeout=timedelta(seconds=sum(t.timeout_seconds for t in tests)
                                                 + ACTIVITY_MARGIN_SECONDS))
            if not answer.ok:
                return await self._stage_failed(run, stage, run_id, artifact, "tests",
                                                f"tests failed: {', '.join(answer.failed)}")
        await self._stage_status(run_id, "baking",
                                 events=[EventSpec("bake_started", {"duration_s": stage.bake_seconds}, "bake_started")])
        if stage.bake_seconds > 0:
            await workflow.sleep(stage.bake_seconds)
        while True:
            bake = await self._control(A_BAKE_GATE, BakeGateRequest(run_id, stage.bake_seconds,
                                                                     stage.bake_deadline_seconds, self._now()),
                                       GateAnswer)
            if bake.result == "pass":
                break
            if bake.result == "fail":
                return await self._stage_failed(run, stage, run_id, artifact, "deadline", bake.reason,
                                                bake_failed=True)
            await workflow.sleep(self._wait_seconds([bake], run.poll_gates_seconds))
        await self._control(A_BAKE_PASSED, BakePassedRequest(run_id, [t.name for t in stage.targets], self._now()))
        baked = EventSpec("bake_finished", {"result": "succeeded", "reason": bake.reason}, "bake_finished")
        if stage.promotion == "manual" and not last:
            await self._stage_status(run_id, "awaiting_promotion", events=[baked])
            await workflow.wait_condition(lambda: stage.name in self._promoted)
            signal = self._promotions[stage.name]
            await self._stage_status(run_id, "succeeded", events=[EventSpec(
                "promoted", {"reason": signal.reason, "approval": None}, "promoted", actor=signal.actor)])
        else:
            await self._stage_status(run_id, "succeeded", events=[baked])
        return "succeeded", None

    def _wait_seconds(self, waiting: list[GateAnswer], poll: int) -> float:
        """Until the latest `until` when every waiting gate knows one (nothing passes before), else
        one poll interval; at least one second."""
        untils = [gate.until for gate in waiting]
        if any(until is None for until in untils):
            return float(poll)
        latest = max(parse_time(until) for until in untils if until is not None)
        return max(1.0, (latest - workflow.now()).total_seconds())

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, woken early by a signal (an approval, a promotion)."""
        self._wake = False
        try:
            await workflow.wait_condition(lambda: self._wake, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            pass

    # ------------------------------------------------------------ deploy

    async def _deploy(self, run: ExecutionInput, deploys: list[_Deploy], hosts: list[str], *, rollback: bool) -> bool:
        """Targets in parallel, each in its batches; after the first failed host no new batch and
        no new hook starts anywhere (hooks already running finish). True when every host passed."""
        self._stop = False

        async def host(deploy: _Deploy, name: str) -> bool:
            for number, hook in enumerate(deploy.hooks):
                if self._stop:
                    return False
                try:
                    answer = await workflow.execute_activity(
                        A_HOOK, HookRequest(run.execution, run.pipeline, run.repo, deploy.artifact, deploy.commit,
                                            deploy.stage.name, deploy.plan.target, name, hosts, hook.phase,
                                            hook.command, deploy.stage.deploy_timeout_seconds,
                                            _production(deploy.stage), rollback, number == 0,
                                            number == len(deploy.hooks) - 1),
                        task_queue=self._prefix + TASK_QUEUE_DEPLOY, result_type=HookAnswer, retry_policy=RETRY,
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        start_to_close_timeout=timedelta(seconds=deploy.stage.deploy_timeout_seconds
                                                         + ACTIVITY_MARGIN_SECONDS))
                except ActivityError:
                    # The hook could not be run at all (its artifact unreadable, retries spent):
                    # the host fails like a failing hook, so the stage can roll back.
                    self._stop = True
                    return False
                if not answer.ok:
                    self._stop = True
                    return False
            return True

        async def target(deploy: _Deploy) -> None:
            for batch in deploy.plan.batches:
                if self._stop:
                    return
                await asyncio.gather(*(host(deploy, name) for name in batch))

        await asyncio.gather(*(target(deploy) for deploy in deploys))
        return not self._stop

    # ------------------------------------------------------------ failure and rollback

    async def _stage_failed(self, run: ExecutionInput, stage: StageView, run_id: int, artifact: str, trigger: str,
                            reason: str, *, bake_failed: bool = False) -> tuple[str, str | None]:
        events = [EventSpec("bake_finished", {"result": "failed", "reason": reason}, "bake_finished")] \
            if bake_failed else []
        if stage.rollback != "automatic":
            await self._stage_status(run_id, "failed", reason=reason, events=events)
            return "failed", f"{stage.name}: {reason}"
        plan = await self._control(A_ROLLBACK_PLAN, RollbackPlanRequest(run.pipeline, stage.name, artifact),
                                   RollbackPlanAnswer)
        started = workflow.now()
        to = {target.target: target.artifact for target in plan.targets}
        await self._stage_status(run_id, "rolling_back", reason=reason, events=[
            *events, EventSpec("rollback_started", {"trigger": trigger, "to": to}, "rollback_started")])
        deploys: list[_Deploy] = []
        for target in plan.targets:
            if target.artifact is None or target.document is None or target.commit is None:
                continue
            restored = next((s for s in pipeline_view(target.document).stages if s.name == stage.name), None)
            if restored is None:
                continue  # the restored artifact's definition lacks the stage: left as it is
            batches = rollback_batches(restored, TargetRollback(target.target, tuple(target.hosts), target.artifact))
            deploys.append(_Deploy(batches, restored, hook_order(restored), target.artifact, target.commit))
        hosts = [host for target in stage.targets for host in target.hosts]
        ok = await self._deploy(run, deploys, hosts, rollback=True) if deploys else True
        if ok:
            for deploy in deploys:
                await self._control(A_ROLLED_BACK, RolledBackRequest(run.pipeline, stage.name, deploy.plan.target,
                                                                     artifact, self._now()))
        outcome = rollback_outcome(len(deploys) if ok else 0, not ok)
        duration = max(0, int((workflow.now() - started).total_seconds() * 1000))
        result = "succeeded" if outcome is ExecutionStatus.ROLLED_BACK else "failed"
        await self._stage_status(run_id, "rolled_back" if result == "succeeded" else "failed", events=[
            EventSpec("rollback_finished", {"result": result, "duration_ms": duration}, "rollback_finished")])
        restored_to = ", ".join(f"{d.plan.target} -> {d.artifact}" for d in deploys) or "nothing restored"
        return str(outcome), f"{stage.name}: {reason}; rolled back ({restored_to})"


def _production(stage: StageView) -> bool:
    return stage.type == "prod" or stage.production_config
