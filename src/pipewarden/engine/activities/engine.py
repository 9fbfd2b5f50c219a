"""`EngineActivities`: every activity of the execution workflow, as methods of one object that
holds its clients (the engine store, the artifact store, the state dir, the org config and
policies the policy gate checks with). `worker.py` makes one and registers its methods.

Idempotency: every event an activity appends carries a key made of the workflow id, the run id,
the activity id and a suffix (`_key`); Temporal gives a retried activity the same ids, so a retry
writes nothing twice. Hook runs are looked up with `begin_hook_run` before anything runs (a
completed run is reported, never run again; an attempt a crash cut off is recorded
`interrupted`, its process group killed, and the hook runs again as the next attempt).

The clock: activities judge gates at the `now` the workflow passes (`workflow.now()`), never at
a clock read here; durations of processes are measured here (they are observations).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, overload

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from pipewarden.engine.activities import blocklist as blocklist_observe
from pipewarden.engine.activities.artifacts import ArtifactError, ArtifactStore, git, read_at_commit
from pipewarden.engine.activities.deploy import LEASE_MARGIN_SECONDS, HookRunner, Lease, run_deploy
from pipewarden.engine.activities.manifest import ManifestError, read_manifest
from pipewarden.engine.activities.process import kill_group, run_command
from pipewarden.engine.activities.rollback_inputs import PlanInputs, PreparedInputs, read_inputs
from pipewarden.engine.activities.rollbacks import HEARTBEATS_ELSEWHERE, Rollbacks, finishing
from pipewarden.engine.alarms import STALE_PERIODS
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
    AppendEventsRequest,
    BakeAnswer,
    BakeGateRequest,
    BakeGatesRequest,
    BakePassedRequest,
    BakeRoundRequest,
    BlockersAnswer,
    BlockersRequest,
    BuildAnswer,
    BuildRequest,
    ClaimAnswer,
    ClaimRequest,
    DeployAnswer,
    DeployRequest,
    EntryGatesRequest,
    EventSpec,
    ExecutionOutcome,
    ExecutionStatusRequest,
    GateAnswer,
    HaltRequest,
    HookAnswer,
    HookRequest,
    PauseRequest,
    PolicyAnswer,
    PolicyRequest,
    RetryRecordRequest,
    RivalsAnswer,
    RivalsRequest,
    RollbackPlanAnswer,
    RollbackPlanRequest,
    RollbackTarget,
    RolledBackRequest,
    StageEntryAnswer,
    StageEntryRequest,
    StageRollbackAnswer,
    StageRollbackRequest,
    StageStartRequest,
    StageStatusRequest,
    TestsAnswer,
    TestsRequest,
    TripwireRequest,
    bake_failure,
    halt_key,
    rollback_started,
    rolled_back_reason,
)
from pipewarden.engine.domain import overrides as override_rules
from pipewarden.engine.domain.errors import IllegalTransition, Refused
from pipewarden.engine.domain.events import ENGINE_ACTOR, EventDraft, draft
from pipewarden.engine.domain.gates import alarms as alarms_gate
from pipewarden.engine.domain.gates import approval as approval_gate
from pipewarden.engine.domain.gates import bake_time as bake_time_gate
from pipewarden.engine.domain.gates import blocklist as blocklist_gate
from pipewarden.engine.domain.gates import datapoints as datapoints_gate
from pipewarden.engine.domain.gates import paused as paused_gate
from pipewarden.engine.domain.gates import policy as policy_gate
from pipewarden.engine.domain.gates import stage_busy as stage_busy_gate
from pipewarden.engine.domain.gates import window as window_gate
from pipewarden.engine.domain.gates.base import FAIL, WAIT, GateResult, clock, next_round_seconds
from pipewarden.engine.domain.ids import artifact_id, format_time, parse_time
from pipewarden.engine.domain.overrides import Override
from pipewarden.engine.domain.rollback import RolledBackFrom, plan_rollback, restored_parts
from pipewarden.engine.domain.status import TERMINAL_STAGE_RUN, ExecutionStatus, StageRunStatus
from pipewarden.engine.parts import deploy_target, rollback_end
from pipewarden.engine.sources.base import MetricSource, MetricSources, ReadContext
from pipewarden.engine.sources.command import CommandSource
from pipewarden.engine.sources.prometheus import PrometheusSource
from pipewarden.engine.sources.synthetic import SyntheticSource
from pipewarden.engine.store import EngineStore, HookRunStart, StageRunRecord
from pipewarden.engine.synthetics import synthetic_reading
from pipewarden.engine.wakeups import Wakeups
from pipewarden.errors import ConfigError, PolicyError
from pipewarden.evaluation.gate import check_document
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.model.pipeline import PipelineFile
from pipewarden.model.view import PipelineView, StageView, pipeline_view

LEASE_POLL_SECONDS = 0.2
VIEWS_KEPT = 512
"""Artifact definitions kept in memory by commit (`EngineActivities._view`)."""
T = TypeVar("T")

HEARTBEAT_SECONDS = 5.0
"""How often a long activity (build, hook, tests) heartbeats; the workflow's heartbeat timeout is
a few times this, so a dead worker is noticed in seconds, not at the start-to-close timeout."""


@contextmanager
def heartbeating() -> Iterator[None]:
    """Heartbeat the current activity every HEARTBEAT_SECONDS from a helper thread while the block
    runs (git clones and unpacking included, not only the commands). Nothing on a bake's
    rollback thread (activities/rollbacks.py): the bake waiting for it heartbeats."""
    if HEARTBEATS_ELSEWHERE.get():
        yield
        return
    done = threading.Event()
    context = contextvars.copy_context()  # the activity's context, for activity.heartbeat

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            activity.heartbeat()

    thread = threading.Thread(target=context.run, args=(beat,), name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _answer(gate: str, result: GateResult) -> GateAnswer:
    return GateAnswer(gate, str(result.result), result.code, result.reason,
                      None if result.until is None else format_time(result.until))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


# Characters YAML does not take as they are inside a quoted scalar (non-printable ones, and the
# line breaks of YAML 1.1 beyond \n and \r): written as JSON escapes, which YAML reads back.
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _as_yaml(document: dict[str, Any]) -> bytes:
    """A stored definition (the loader's dict) as a file the loader reads back as the same
    document: JSON, which is YAML."""
    text = json.dumps(document, ensure_ascii=False, default=str)
    return _NOT_YAML_PRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text).encode()


def _sbom(document: dict[str, Any] | None) -> str | None:
    """`build.sbom` of a pipeline document, when it sets one."""
    build = document.get("build") if document is not None else None
    sbom = build.get("sbom") if isinstance(build, dict) else None
    return sbom if isinstance(sbom, str) else None


def engine_sources(store: EngineStore, prometheus_url: str | None) -> MetricSources:
    """The metric sources of an engine: its Prometheus (when configured), the synthetics store,
    commands."""
    return MetricSources(prometheus=None if prometheus_url is None else PrometheusSource(prometheus_url),
                         synthetic=SyntheticSource(partial(synthetic_reading, store)), command=CommandSource())


POLICY_THREADS = 2
_POLICY_THREADS = ThreadPoolExecutor(max_workers=POLICY_THREADS, thread_name_prefix="pipewarden-policy")
"""Where the policy gate's evaluations run, whatever activity thread asks (see `_policy`)."""


@dataclass(frozen=True)
class EntryJudgement:
    """The entry gates of one stage as `EngineActivities.judge_entry_gates` judged them:
    `results` (gate name, result) in engine.md's order; `view` the definition at the commit
    (None when it is not valid) and `stage` its stage of that name (None when it has none)."""

    results: list[tuple[str, GateResult]]
    view: PipelineView | None
    stage: StageView | None

    @property
    def allowed(self) -> bool:
        """Every gate passes: the artifact may enter the stage now."""
        return all(result.passed for _, result in self.results)


BAKE_THREADS = 32
"""Bake rounds (A_BAKE) judged at the same time in one process: a slow source (a command of up
to 30 s) holds one of them, not the others. A round mostly waits (Prometheus, the store's write
lock): with 100 bakes failing at once, 8 threads made the last rounds queue (the slowest reached
its rollback's first hook after 5.7-7.9 s; 4.9 s with 32: benchmarks/RESULTS.md, issue 14)."""


class EngineActivities:
    def __init__(self, store: EngineStore, state_dir: Path, *, org_config: str | None = None,
                 policies: Sequence[str] = (), pipelines: Collection[str] | None = None,
                 prometheus_url: str | None = None, sources: MetricSource | None = None) -> None:
        """`pipelines`: the names of the pipelines the engine's config releases now; the policy
        gate's fleet rules compare only with those (a pipeline taken out of the config stays in
        the store but is no longer one of "the engine's other pipelines"). None: every pipeline
        the store knows (tests that register pipelines by hand). `sources`: what the datapoints
        gate reads (default: `engine_sources` of the store and `prometheus_url`)."""
        self.store = store
        self.state_dir = Path(state_dir)
        self.artifacts = ArtifactStore(self.state_dir)
        self.org_config = org_config
        self.policies = tuple(policies)
        self.pipelines = None if pipelines is None else frozenset(pipelines)
        self.ancestry = blocklist_observe.GitAncestry()
        self._others_lock = threading.Lock()
        self._loaded_others: dict[tuple[str, bytes], PipelineFile] = {}
        """The other pipelines' heads as loaded for the policy gate (`_others`), by name and content."""
        self.sources = sources if sources is not None else engine_sources(store, prometheus_url)
        self.wakeups = Wakeups()
        """The bakes of this process wait here for their next round (engine/wakeups.py)."""
        self._bake_threads = ThreadPoolExecutor(max_workers=BAKE_THREADS, thread_name_prefix="pipewarden-bake")
        self.rollbacks = Rollbacks()
        """The rollbacks bake activities run in this process (patch `bake-rolls-back`)."""
        self.prepared = PreparedInputs()
        """The rollback plans' inputs read ahead by the bakes that roll back (rollback_inputs.py)."""
        self._views: dict[str, PipelineView] = {}
        self._views_lock = threading.Lock()
        """Artifact definitions by commit (`_view`): a bake round needs its stage every poll.gates,
        and reading and viewing the record each time cost a tenth of a round."""

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _key(suffix: str) -> str:
        # The run id too: a `retry` is a new run of the same workflow id, whose activity ids
        # start again from 1; a key without the run would find the failed run's hook results
        # and events and skip them. A retried activity keeps its run id and activity id.
        info = activity.info()
        return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{suffix}"

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def _env(self, *, pipeline: str, execution: str, commit: str, artifact: str,
             extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"PIPEWARDEN_PIPELINE": pipeline, "PIPEWARDEN_EXECUTION": execution,
                    "PIPEWARDEN_COMMIT": commit, "PIPEWARDEN_ARTIFACT": artifact,
                    "PIPEWARDEN_ROLLBACK": "0"})
        env.update(extra)
        return env

    def _log(self, *parts: str) -> Path:
        return self.state_dir / "logs" / Path(*[_safe(part) for part in parts])

    # ------------------------------------------------------------ policy

    def _others(self, pipeline: str, path: str) -> dict[str, PipelineFile]:
        """What the fleet rules compare a pipeline with (engine.md, `policy`: "the heads of the
        engine's other pipelines"): the newest valid definition the poller stored for each other
        pipeline, named `REPO@BRANCH:PATH` (the name a fleet finding gives the other pipeline),
        loaded. Each is loaded once per content and kept while it is a head: every entry round
        checks the policy again, and loading 99 others took 150 ms of the GIL at each
        (benchmarks/RESULTS.md, issues 13 (b) and 14)."""
        others: dict[str, PipelineFile] = {}
        with self._others_lock:
            cached = dict(self._loaded_others)
        kept: dict[tuple[str, bytes], PipelineFile] = {}
        for record in self.store.pipelines():
            if record.name == pipeline or record.definition is None:
                continue
            if self.pipelines is not None and record.name not in self.pipelines:
                continue
            name = f"{record.repo}@{record.branch}:{record.path}" if record.repo else f"pipeline {record.name}"
            if name == path:
                continue
            text = _as_yaml(record.definition)
            loaded = cached.get((name, text)) or load_pipeline_bytes(name, text)
            kept[(name, text)] = others[name] = loaded
        with self._others_lock:
            # the heads seen now, and those another thread just loaded (a head that changed
            # since is dropped at the next call that does not see it)
            self._loaded_others = {**kept, **{k: v for k, v in self._loaded_others.items() if k not in cached}}
        return others

    def _policy(self, pipeline: str, path: str, source: bytes, now: datetime) -> tuple[GateResult, dict[str, Any] | None]:
        loaded = load_pipeline_bytes(path, source)
        document = loaded.document if loaded.valid and isinstance(loaded.document, dict) else None
        others = self._others(pipeline, path)
        try:
            # On the policy threads only: the Rego engine is per thread (about 6 MiB each) and
            # holds the GIL while it evaluates, so 32 activity threads each with one would cost
            # memory for nothing (benchmarks/RESULTS.md, issue 13 (c)).
            checked = _POLICY_THREADS.submit(check_document, source, path, org_config=self.org_config,
                                             policies=self.policies, now=now, others=others).result()
        except (ConfigError, PolicyError) as error:
            return policy_gate.evaluate([], now=now, config_error=str(error)), None
        findings = [policy_gate.PolicyFinding(f.rule, f.level, f.path or "", f.message, f.excepted)
                    for f in checked.findings]
        result = policy_gate.evaluate(findings, now=now)
        # Which heads the fleet rules saw, for the gate event's inputs.
        result = replace(result, inputs={**result.inputs, "others": sorted(others)})
        if result.passed and document is not None:
            name = document.get("metadata", {}).get("name")
            if name != pipeline:
                return FAIL("name_changed", f"metadata.name is {name!r}; this pipeline is named {pipeline!r} "
                            "and keeps that name", inputs={**result.inputs, "name": name}), None
        return result, document

    @activity.defn(name=A_POLICY)
    def policy_check(self, request: PolicyRequest) -> PolicyAnswer:
        now = parse_time(request.now)
        try:
            source = read_at_commit(request.repo, request.commit, request.pipeline_path)
        except ArtifactError as error:
            result = FAIL("unreadable", str(error), inputs={"now": request.now})
            document = None
        else:
            result, document = self._policy(request.pipeline, request.pipeline_path, source, now)
        if document is not None and request.stage_run is None:
            self.store.set_execution_definition(request.execution, document)
        if request.stage_run is not None:
            self.store.record_gate(request.stage_run, policy_gate.NAME, result, now=now)
        else:
            self.store.append_event(draft("gate", time=now, pipeline=request.pipeline, execution=request.execution,
                                          data=result.event_data(policy_gate.NAME)), key=self._key("gate"))
        return PolicyAnswer(_answer(policy_gate.NAME, result), document if result.passed else None)

    # ------------------------------------------------------------ build

    @activity.defn(name=A_BUILD)
    def build(self, request: BuildRequest) -> BuildAnswer:
        started = self._now()
        with heartbeating():
            try:
                return self._build(request)
            except CancelledError:
                # `cancel` of the execution: the SDK raised this in our thread (delivered with a
                # heartbeat's answer); run_command has killed the command's process group on
                # its way out. The build ends `interrupted`, as a build a crash cut off does.
                self._built(request, None, "interrupted", started, "cancelled")
                raise

    def _build(self, request: BuildRequest) -> BuildAnswer:
        artifact = artifact_id(request.commit)
        now = self._now()
        attempt = activity.info().attempt
        self.store.append_event(draft("build_started", time=now, pipeline=request.pipeline,
                                      execution=request.execution,
                                      data={"commit": request.commit, "attempt": attempt}),
                                key=self._key(f"build_started#{attempt}"))
        record = self.artifacts.record(artifact)
        if record is not None and self.artifacts.intact(artifact):
            # A commit is built at most once: another execution of it reuses the artifact.
            return self._built(request, artifact, "reused", now, "reused")
        started = self._now()
        try:
            checkout = self.artifacts.fresh_checkout(request.repo, request.commit, artifact)
            author = git(["log", "-1", "--format=%an <%ae>", request.commit], cwd=checkout).strip()
            committed = git(["log", "-1", "--format=%cI", request.commit], cwd=checkout).strip()
        except ArtifactError as error:
            return self._built(request, None, "failed", started, f"checkout failed: {error}")
        env = self._env(pipeline=request.pipeline, execution=request.execution, commit=request.commit,
                        artifact=artifact, extra={})
        env.pop("PIPEWARDEN_ROLLBACK")
        steps: list[tuple[str, str, str | None]] = [(f"command {i + 1}", c, None) for i, c in enumerate(request.commands)]
        steps += [(f"test {t.name}", t.command, t.name) for t in request.tests]
        for label, command, test in steps:
            log = self._log(request.execution, "build", f"{label}.log")
            result = run_command(command, cwd=checkout, log=log, timeout_seconds=request.timeout_seconds,
                                 env={**env, **({"PIPEWARDEN_TEST": test} if test else {})})
            if not result.ok:
                why = f"timed out after {request.timeout_seconds}s" if result.timed_out else f"exited {result.exit_code}"
                # Where its output is (relative to the state dir): the output itself stays in logs/.
                return self._built(request, None, "failed", started, f"build {label} ({command}) {why}; "
                                   f"output in {log.relative_to(self.state_dir)}")
        source = (checkout / request.artifact_path).resolve()
        if not source.is_relative_to(checkout.resolve()):
            return self._built(request, None, "failed", started,
                               f"build.artifact {request.artifact_path!r} is outside the checkout")
        if not source.exists():
            return self._built(request, None, "failed", started, f"build.artifact {request.artifact_path!r} does not "
                               f"exist after the build commands (build.commands must create it in the checkout)")
        try:
            read = read_at_commit(request.repo, request.commit, request.pipeline_path)
            loaded = load_pipeline_bytes(request.pipeline_path, read)
            document = loaded.document if loaded.valid and isinstance(loaded.document, dict) else None
            # The manifest (engine.md): from build.sbom of the artifact's own definition, else the
            # lock files; read after the build commands, which may write either.
            packages = read_manifest(checkout, _sbom(document))
            self.artifacts.pack(source, artifact, request.commit, author=author, committer_time=committed,
                                pipeline_path=request.pipeline_path, document=document,
                                packages=[package.to_json() for package in packages])
        except ArtifactError as error:
            return self._built(request, None, "failed", started, str(error))
        except ManifestError as error:
            return self._built(request, None, "failed", started, f"the artifact's manifest cannot be read: {error}")
        self.store.set_execution_artifact(request.execution, artifact)
        return self._built(request, artifact, "succeeded", started, "built")

    def _built(self, request: BuildRequest, artifact: str | None, result: str, started: datetime,
               reason: str) -> BuildAnswer:
        now = self._now()
        if artifact is not None:
            self.store.set_execution_artifact(request.execution, artifact)
        self.store.append_event(draft("build_finished", time=now, pipeline=request.pipeline,
                                      execution=request.execution, data={
                                          "result": result, "artifact": artifact,
                                          "duration_ms": max(0, int((now - started).total_seconds() * 1000))}),
                                key=self._key("build_finished"))
        return BuildAnswer(artifact is not None, artifact, reason)

    # ------------------------------------------------------------ hooks and tests

    @activity.defn(name=A_HOOK)
    def run_hook(self, request: HookRequest) -> HookAnswer:
        """One hook on one host, holding the host's lease (one hook per host across workers).
        Executions recorded before A_DEPLOY run their hooks one activity each."""
        key = self._key("hook")
        attempt = activity.info().attempt
        with heartbeating():
            self._lease(request.host, key, attempt, request.timeout_seconds + LEASE_MARGIN_SECONDS)
            try:
                return self._run_hook(request, key, attempt)
            finally:
                self.store.release_host_lease(request.host, key)

    @activity.defn(name=A_DEPLOY)
    def run_deploy(self, request: DeployRequest) -> DeployAnswer:
        """A stage's whole deploy or rollback (activities/deploy.py): its hooks run on threads
        of their own, each begun and finished in the store under its own key."""
        prefix = self._key("deploy")
        attempt = activity.info().attempt
        runner = HookRunner(
            run=lambda hook, key, lease: self._run_hook(hook, key, attempt, lease),
            lease=lambda host, holder, seconds, halted: self._lease(host, holder, attempt, seconds, halted),
            release=self.store.release_host_lease,
            halted=lambda: self.store.deploy_halted(request.halt_key))
        with heartbeating():
            return run_deploy(request, prefix, runner)

    @activity.defn(name=A_HALT)
    def halt_deploy(self, request: HaltRequest) -> None:
        self.store.halt_deploy(request.key, request.reason, now=parse_time(request.now))

    def _lease(self, host: str, key: str, attempt: int, seconds: float,
               halted: Callable[[], bool] = lambda: False) -> bool:
        """Wait for the host's lease (False when `halted` says to give up waiting). It lasts the
        hooks' timeouts plus a margin: they never run longer, so a lease left by a dead worker
        frees itself."""
        while not self.store.acquire_host_lease(host, key, attempt, now=self._now(), seconds=seconds):
            if halted():
                return False
            time.sleep(LEASE_POLL_SECONDS)
        return True

    @overload
    def _run_hook(self, request: HookRequest, key: str, attempt: int) -> HookAnswer: ...

    @overload
    def _run_hook(self, request: HookRequest, key: str, attempt: int, lease: Lease | None) -> HookAnswer | None: ...

    def _run_hook(self, request: HookRequest, key: str, attempt: int, lease: Lease | None = None) -> HookAnswer | None:
        """Run one hook under `key`; with `lease`, the host's lease is taken in the same write as
        the hook's start, and None (nothing done) while another hook run holds it."""
        now = self._now()
        log = self._log(request.execution, request.stage, f"{request.host}-{request.hook}"
                        f"{'-rollback' if request.rollback else ''}-a{attempt}.log")
        relative = str(log.relative_to(self.state_dir))
        begin: Callable[..., HookRunStart | None] = (
            self.store.begin_hook_run if lease is None else partial(
                self.store.lease_and_begin_hook_run, holder=lease.holder, attempt=attempt, seconds=lease.seconds))
        start = begin(key, execution=request.execution, pipeline=request.pipeline, stage=request.stage,
                      target=request.target, host=request.host, hook=request.hook, artifact=request.artifact,
                      now=now, rollback=request.rollback, log=relative, first=request.first)
        if start is None:
            return None
        if start.completed:
            run = start.run
            return HookAnswer(run.succeeded, run.exit_code, run.timed_out, run.log)
        if start.interrupted is not None and start.interrupted.pgid is not None:
            kill_group(start.interrupted.pgid)
        try:
            checkout = self.artifacts.ensure_checkout(request.repo, request.commit, request.artifact)
            unpacked = self.artifacts.unpack(request.artifact)
        except ArtifactError as error:
            raise ApplicationError(str(error), non_retryable=True) from error
        host_dir = self.state_dir / "hosts" / _safe(request.host.lower())
        host_dir.mkdir(parents=True, exist_ok=True)
        env = self._env(pipeline=request.pipeline, execution=request.execution, commit=request.commit,
                        artifact=request.artifact, extra={
                            "PIPEWARDEN_ARTIFACT_DIR": str(unpacked), "PIPEWARDEN_STAGE": request.stage,
                            "PIPEWARDEN_HOSTS": " ".join(request.hosts), "PIPEWARDEN_TARGET": request.target,
                            "PIPEWARDEN_HOST": request.host, "PIPEWARDEN_HOST_DIR": str(host_dir),
                            "PIPEWARDEN_HOOK": request.hook,
                            "PIPEWARDEN_PRODUCTION_CONFIG": "1" if request.production_config else "0",
                            "PIPEWARDEN_ROLLBACK": "1" if request.rollback else "0"})
        run_attempt = start.run.attempt
        result = run_command(request.command, cwd=checkout, env=env, log=log, timeout_seconds=request.timeout_seconds,
                             on_start=lambda pgid: self.store.set_hook_pgid(key, run_attempt, pgid))
        done = self._now()
        run, _ = self.store.finish_hook_run(key, run_attempt, exit_code=result.exit_code, timed_out=result.timed_out,
                                            duration_ms=result.duration_ms, now=done, last=request.last)
        return HookAnswer(run.succeeded, run.exit_code, run.timed_out, run.log)

    @activity.defn(name=A_TESTS)
    def run_stage_tests(self, request: TestsRequest) -> TestsAnswer:
        with heartbeating():
            try:
                return self._run_stage_tests(request)
            except CancelledError:
                # `cancel` of the execution (see `build`): the running test's group is killed.
                self.store.append_event(draft("tests_finished", time=self._now(), pipeline=request.pipeline,
                                              execution=request.execution, stage=request.stage,
                                              data={"result": "cancelled", "failed": []}),
                                        key=self._key("tests_finished"))
                raise

    def _run_stage_tests(self, request: TestsRequest) -> TestsAnswer:
        try:
            checkout = self.artifacts.ensure_checkout(request.repo, request.commit, request.artifact)
            unpacked = self.artifacts.unpack(request.artifact)
        except ArtifactError as error:
            # As for a hook: the artifact's content gone or altered, its repository unreadable.
            # Retrying the same read changes nothing; the workflow ends the execution with this.
            raise ApplicationError(f"stage tests of {request.stage} cannot run: {error}", non_retryable=True) from error
        failed: list[str] = []
        for test in request.tests:
            env = self._env(pipeline=request.pipeline, execution=request.execution, commit=request.commit,
                            artifact=request.artifact, extra={
                                "PIPEWARDEN_ARTIFACT_DIR": str(unpacked), "PIPEWARDEN_STAGE": request.stage,
                                "PIPEWARDEN_HOSTS": " ".join(request.hosts), "PIPEWARDEN_TEST": test.name,
                                "PIPEWARDEN_PRODUCTION_CONFIG": "1" if request.production_config else "0"})
            log = self._log(request.execution, request.stage, f"test-{test.name}-a{activity.info().attempt}.log")
            result = run_command(test.command, cwd=checkout, env=env, log=log, timeout_seconds=test.timeout_seconds)
            if not result.ok:
                failed.append(test.name)
                break  # one failure fails the stage; the tests after it do not run
        self.store.append_event(draft("tests_finished", time=self._now(), pipeline=request.pipeline,
                                      execution=request.execution, stage=request.stage,
                                      data={"result": "failed" if failed else "succeeded", "failed": failed}),
                                key=self._key("tests_finished"))
        return TestsAnswer(not failed, failed)

    # ------------------------------------------------------------ stage runs and gates

    @activity.defn(name=A_START_STAGE)
    def start_stage_run(self, request: StageStartRequest) -> int:
        return self.store.start_stage_run(request.execution, request.stage, now=parse_time(request.now)).id

    @activity.defn(name=A_ENTRY_GATES)
    def entry_gates(self, request: EntryGatesRequest) -> list[GateAnswer]:
        """Observe and judge the built entry gates in engine.md's order (`judge_entry_gates`),
        recording each (an event at its first evaluation and at each change of result or code)."""
        now = parse_time(request.now)
        judged = self.judge_entry_gates(
            pipeline=request.pipeline, stage=request.stage, repo=request.repo, commit=request.commit,
            pipeline_path=request.pipeline_path, execution=request.execution,
            approvals_required=request.approvals_required, approvals_given=request.approvals_given,
            poll_gates_seconds=request.poll_gates_seconds, now=now)
        self.store.record_gates(request.run_id, judged.results, now=now)
        return [_answer(name, result) for name, result in judged.results]

    def judge_entry_gates(self, *, pipeline: str, stage: str, repo: str, commit: str, pipeline_path: str,
                          execution: str | None, approvals_required: Sequence[str] | None,
                          approvals_given: Collection[str], poll_gates_seconds: int,
                          now: datetime) -> EntryJudgement:
        """Observe and judge the entry gates of `stage` for the artifact of `commit` at `now`, in
        engine.md's order (`policy`, `blocklist`, `approval` when the stage has approvals,
        `window` when it has one, `alarms` when it lists some, `stage_busy`, `paused`), with the
        active overrides applied as the engine applies them. Records nothing: the entry-gates
        activity records the results for its stage run; the OPA decision API (engine/decisions.py)
        answers with them.

        `execution`: the execution whose approvals count and which does not count as occupying
        the stage (None: a new one, with no approvals and occupying nothing). `approvals_required`:
        the stage's approvals (None: those of the definition at `commit`). `approvals_given`: those
        given beside the store's `approved` events of `execution` for the stage.
        Errors: none of its own; what cannot be observed is a gate that fails or waits."""
        document: dict[str, Any] | None = None
        try:
            source = read_at_commit(repo, commit, pipeline_path)
            policy, document = self._policy(pipeline, pipeline_path, source, now)
        except ArtifactError as error:
            policy = FAIL("unreadable", str(error), inputs=clock(now))
        view = self._view(commit, document)
        found = None if view is None else next((s for s in view.stages if s.name == stage), None)
        results: list[tuple[str, GateResult]] = [(policy_gate.NAME, policy)]
        # The team whose org chain's entries count is the artifact's; a commit the engine has not
        # built (asked about by the decision API) has no record yet: its own definition's team.
        results.append((blocklist_gate.NAME, self._blocklist(pipeline, stage, repo, commit, now,
                                                             team=None if view is None else view.team)))
        required = (found.approvals if found is not None else ()) if approvals_required is None else approvals_required
        if required:
            # The store's `approved` events are the record of approvals (the client writes them
            # before it signals): they still count after a retry or a restarted workflow run.
            given = set(approvals_given)
            if execution is not None:
                given |= {str(event.data["approval"]) for event in self.store.events(execution=execution,
                                                                                     types=["approved"])
                          if event.stage == stage}
            results.append((approval_gate.NAME, approval_gate.evaluate(required, given, now=now)))
        if view is not None and found is not None and found.window is not None:
            results.append((window_gate.NAME, self._window(pipeline, view, found, now)))
        if found is not None and found.alarms:
            results.append((alarms_gate.NAME, self._alarms(pipeline, found, now, "entry", poll_gates_seconds)))
        # No execution: one that does not exist yet, which occupies nothing ("" is no execution id).
        results.append((stage_busy_gate.NAME, stage_busy_gate.evaluate(
            execution or "", self.store.occupants(pipeline, stage), now=now)))
        record = self.store.pipeline(pipeline)
        results.append((paused_gate.NAME, paused_gate.evaluate(
            bool(record and record.paused), now=now, by=record.paused_by if record else None,
            reason=record.paused_reason if record else None)))
        return EntryJudgement(results, view, found)

    def _blocklist(self, pipeline: str, stage: str, repo: str | None, commit: str, now: datetime, *,
                   team: str | None = None) -> GateResult:
        """The `blocklist` gate for the artifact of `commit` at `stage`'s entry: the entries of the
        artifact's team's org chain as the org config is now (`team` when the artifact has no
        record), its manifest and the ancestry in `repo` (activities/blocklist.py), with an active
        override of the gate for the stage."""
        record = self.artifacts.record(artifact_id(commit))
        entries = blocklist_observe.chain_entries(
            self.org_config, self.policies, blocklist_observe.team_of(record) if record is not None else team, now)
        result = blocklist_observe.judge(entries, record, repo=repo, commit=commit, now=now, git=self.ancestry)
        if result.passed:  # an override changes only a gate that does not pass: no read for it
            return result
        override = override_rules.find(self.store.overrides(pipeline=pipeline), pipeline, stage,
                                       blocklist_gate.NAME, now)
        return override_rules.apply(blocklist_gate.NAME, result, override, now)

    def _view(self, commit: str, document: dict[str, Any] | None) -> PipelineView | None:
        """The definition the execution follows: `document` (its commit's `pipeline.yaml`, as the
        policy gate read it), else the one its artifact record keeps; None when neither is valid.
        The record's is kept per commit once read (VIEWS_KEPT of them): an artifact's definition
        is that of its commit, which never changes."""
        cached = document is None
        if cached:
            if (kept := self._views.get(commit)) is not None:
                return kept
            record = self.artifacts.record(artifact_id(commit))
            document = None if record is None else record.document
        if document is None:
            return None
        try:
            view = pipeline_view(document)
        except Exception:  # noqa: BLE001 - an invalid definition fails its policy gate, not here
            return None
        if cached:
            with self._views_lock:  # the bake threads share it
                if len(self._views) >= VIEWS_KEPT:
                    self._views.pop(next(iter(self._views)), None)  # the oldest read (dicts keep order)
                self._views[commit] = view
        return view

    def _overridden(self, pipeline: str, stage: str, gate: str, result: GateResult, now: datetime,
                    overrides: Sequence[Override] | None = None) -> GateResult:
        """`result` with the active override of `gate` at `stage` applied; `overrides`: the
        pipeline's, when the caller read them already (a bake round reads them once)."""
        found = self.store.overrides(pipeline=pipeline) if overrides is None else overrides
        override = override_rules.find(found, pipeline, stage, gate, now)
        return override_rules.apply(gate, result, override, now)

    def _window(self, pipeline: str, view: PipelineView, stage: StageView, now: datetime) -> GateResult:
        """`window`: open now with room for the bake (domain/gates/window.py), or overridden."""
        window = view.windows.get(stage.window or "")
        if window is None:  # the schema's references make this unreachable for a valid file
            result = WAIT("config_error", f"window {stage.window!r} is not defined", inputs=clock(now))
        else:
            result = window_gate.evaluate(window, stage.bake_seconds, now=now)
        return self._overridden(pipeline, stage.name, window_gate.NAME, result, now)

    def _alarms(self, pipeline: str, stage: StageView, now: datetime, phase: alarms_gate.Phase,
                poll_seconds: int, overrides: Sequence[Override] | None = None) -> GateResult:
        """`alarms` at the entry or as the tripwire, from the states the server's evaluator stored
        (engine/alarms.py); a state older than STALE_PERIODS polls counts as not evaluated."""
        stale = timedelta(seconds=STALE_PERIODS * max(1, poll_seconds))
        stored = {name: found for name, found in self.store.alarm_states(pipeline, stage.name).items()
                  if name in stage.alarms}
        states = {name: state for name, (state, evaluated) in stored.items() if now - evaluated <= stale}
        result = alarms_gate.evaluate(states, now=now, phase=phase, expected=stage.alarms,
                                      stale={name: evaluated for name, (_, evaluated) in stored.items()
                                             if name not in states})
        return self._overridden(pipeline, stage.name, alarms_gate.NAME, result, now, overrides)

    def _blocklisted(self, pipeline: str, stage: str, artifacts: Collection[str], now: datetime) -> set[str]:
        """The artifacts among `artifacts` that the blocklist gate of `stage` fails now (an active
        override of it counts, as at an entry): a rollback never restores them. One whose gate
        cannot judge (it waits: the org config invalid, the repository unreadable) is not counted:
        it passed this stage before, and restoring service comes first."""
        if not artifacts:
            return set()
        repo = self.store.pipeline_repo(pipeline)
        found: set[str] = set()
        for artifact in sorted(artifacts):
            record = self.artifacts.record(artifact)
            if record is not None and self._blocklist(pipeline, stage, repo, record.commit, now).failed:
                found.add(artifact)
        return found

    def _stage_events(self, run_id: int, specs: Sequence[EventSpec], now: datetime,
                      run: StageRunRecord | None = None) -> list[tuple[EventDraft, str]]:
        """The events of a stage run's status change as drafts with their idempotency keys (`run`:
        the stage run as the caller just read it; None: read here)."""
        run = self.store.stage_run(run_id) if run is None else run
        return [(draft(spec.type, time=now, pipeline=run.pipeline, execution=run.execution, stage=run.stage,
                       target=spec.target, host=spec.host, actor=spec.actor, data=spec.data),
                 self._key(spec.suffix))
                for spec in specs]

    @activity.defn(name=A_STAGE_STATUS)
    def set_stage_status(self, request: StageStatusRequest) -> str | None:
        """None when written (or already so); with `unless_rolling_back`, the status found instead
        when the run is `rolling_back` or cannot move to `request.status` any more."""
        return self._set_stage_status(request, None)

    def _set_stage_status(self, request: StageStatusRequest, run: StageRunRecord | None) -> str | None:
        """`set_stage_status`; `run`: the stage run as the caller just read it (None: read here)."""
        now = parse_time(request.now)
        run = self.store.stage_run(request.run_id) if run is None else run
        events = self._stage_events(request.run_id, request.events, now, run)
        if request.unless_rolling_back and run.status is StageRunStatus.ROLLING_BACK:
            return str(StageRunStatus.ROLLING_BACK)
        try:
            self.store.set_stage_run_status(request.run_id, StageRunStatus(request.status), now=now,
                                            reason=request.reason, artifact=request.artifact, events=events)
        except IllegalTransition:
            if not request.unless_rolling_back:
                raise
            # moved meanwhile (a bake's own rollback began): the caller decides
            return str(self.store.stage_run(request.run_id).status)
        return None

    @activity.defn(name=A_APPEND)
    def append_events(self, request: AppendEventsRequest) -> None:
        now = parse_time(request.now)
        for spec in request.events:
            self.store.append_event(draft(spec.type, time=now, pipeline=request.pipeline, execution=request.execution,
                                          stage=request.stage, target=spec.target, host=spec.host, actor=spec.actor,
                                          data=spec.data), key=self._key(spec.suffix))

    @activity.defn(name=A_EXECUTION_STATUS)
    def set_execution_status(self, request: ExecutionStatusRequest) -> None:
        self.store.set_execution_status(request.execution, ExecutionStatus(request.status),
                                        now=parse_time(request.now), reason=request.reason,
                                        key=self._key("execution_finished"))

    @activity.defn(name=A_BAKE_GATE)
    def bake_gate(self, request: BakeGateRequest) -> GateAnswer:
        now = parse_time(request.now)
        run = self.store.stage_run(request.run_id)
        result = bake_time_gate.evaluate(run.bake_started, request.duration_seconds, now=now,
                                         deadline_seconds=request.deadline_seconds)
        self.store.record_gate(request.run_id, bake_time_gate.NAME, result, now=now)
        return _answer(bake_time_gate.NAME, result)

    @activity.defn(name=A_BAKE_GATES)
    def bake_gates(self, request: BakeGatesRequest) -> list[GateAnswer]:
        """One round of the bake: `bake_time` (without its deadline), `datapoints` (when set),
        the `alarms` tripwire (when the stage lists alarms), each with its active override; then
        the deadline over the bake as a whole: a bake that has not passed by `bake.deadline` fails
        its `bake_time` gate with code `deadline`, unless another gate failed first."""
        return self._bake_gates(request, self.store.stage_run(request.run_id))

    def _bake_gates(self, request: BakeGatesRequest, run: StageRunRecord,
                    held: list[tuple[str, GateResult]] | None = None) -> list[GateAnswer]:
        """`bake_gates` over `run` as the caller read it (a round reads its run and the
        pipeline's overrides once: each read is a store transaction). With `held`: a round in
        which a gate fails is not recorded here but put in `held`, for the rollback to record
        with the run's move to `rolling_back`, in one write (`EngineStore.fail_stage_run`)."""
        now = parse_time(request.now)
        view = self._view(request.commit, None)
        stage = None if view is None else next((s for s in view.stages if s.name == request.stage), None)
        if view is None or stage is None:
            result = WAIT("config_error", f"the definition of {request.artifact} has no stage {request.stage}",
                          inputs=clock(now))
            self.store.record_gate(request.run_id, bake_time_gate.NAME, result, now=now)
            return [_answer(bake_time_gate.NAME, result)]
        results: list[tuple[str, GateResult]] = [
            (bake_time_gate.NAME, bake_time_gate.evaluate(run.bake_started, stage.bake_seconds, now=now))]
        overrides = self.store.overrides(pipeline=request.pipeline) if stage.datapoints is not None or stage.alarms \
            else None
        # The tripwire first: it reads the store, and a firing alarm fails the round whatever the
        # counts say, so its round reads no metrics (when 100 executions' alarm fires at once,
        # their rounds come all together; the datapoints keep their last evaluation).
        tripwire = None if not stage.alarms else self._alarms(request.pipeline, stage, now, "tripwire",
                                                              request.poll_gates_seconds, overrides)
        if stage.datapoints is not None and not (tripwire is not None and tripwire.failed):
            results.append((datapoints_gate.NAME, self._datapoints(request, view, stage, now, overrides)))
        if tripwire is not None:
            results.append((alarms_gate.NAME, tripwire))
        if (run.bake_started is not None and not any(r.failed for _, r in results)
                and not all(r.passed for _, r in results)
                and bake_time_gate.deadline_passed(run.bake_started, stage.bake_deadline_seconds, now)):
            waiting = "; ".join(f"{name}: {r.reason}" for name, r in results if r.waiting)
            results[0] = (bake_time_gate.NAME, FAIL("deadline", f"the bake still waits at its deadline of "
                                                    f"{stage.bake_deadline_seconds}s ({waiting})",
                                                    inputs={**results[0][1].inputs,
                                                            "deadline_s": stage.bake_deadline_seconds}))
        if held is not None and any(r.failed for _, r in results):
            held.extend(results)
        else:
            self.store.record_gates(request.run_id, results, now=now)
        return [_answer(name, result) for name, result in results]

    def _datapoints(self, request: BakeGatesRequest, view: PipelineView, stage: StageView,
                    now: datetime, overrides: Sequence[Override] | None = None) -> GateResult:
        """`datapoints`: both references read through the sources, counted since the deploy's end."""
        datapoints = stage.datapoints
        assert datapoints is not None
        cwd: Path | None = None
        unpacked: dict[str, str] = {}
        if any(ref is not None and ref.source == "command" for ref in (datapoints.positive, datapoints.negative)):
            try:
                cwd = self.artifacts.ensure_checkout(request.repo, request.commit, request.artifact)
                unpacked = {"PIPEWARDEN_ARTIFACT_DIR": str(self.artifacts.unpack(request.artifact))}
            except ArtifactError:
                cwd = None  # the command runs in the worker's directory; its own error says more
        env = self._env(pipeline=request.pipeline, execution=request.execution, commit=request.commit,
                        artifact=request.artifact, extra={
                            **unpacked, "PIPEWARDEN_STAGE": stage.name, "PIPEWARDEN_HOSTS": " ".join(stage.hosts),
                            "PIPEWARDEN_PRODUCTION_CONFIG": "1" if stage.is_prod or stage.production_config else "0"})
        intervals = {s.name: float(s.interval_seconds) for s in view.synthetics if s.interval_seconds is not None}
        context = ReadContext(stage.name, stage.hosts, now, pipeline=request.pipeline,
                              deploy_finished=parse_time(request.deploy_finished),
                              poll_seconds=request.poll_gates_seconds, env=env, cwd=cwd,
                              synthetic_intervals=intervals)
        positive = self.sources.read(datapoints.positive, context).observation()
        negative = None if datapoints.negative is None else self.sources.read(datapoints.negative,
                                                                                context).observation()
        result = datapoints_gate.evaluate(positive, negative, datapoints.min_positive, datapoints.max_negative,
                                          now=now)
        return self._overridden(request.pipeline, stage.name, datapoints_gate.NAME, result, now, overrides)

    @activity.defn(name=A_TRIPWIRE)
    def alarm_tripwire(self, request: TripwireRequest) -> GateAnswer:
        """The stage's alarms as a tripwire while it deploys (and runs its tests): FAIL
        `alarm_firing` when one fires (unless `override alarms`), recorded as a `gate` event."""
        now = parse_time(request.now)
        view = self._view(request.commit, None)
        stage = None if view is None else next((s for s in view.stages if s.name == request.stage), None)
        if stage is None or not stage.alarms:
            return GateAnswer(alarms_gate.NAME, "pass", "ok", "no alarms")
        result = self._alarms(request.pipeline, stage, now, "tripwire", request.poll_gates_seconds)
        if result.failed:  # a breach or a source error during the deploy only matters at the bake
            if request.halt_key is not None:  # first: whoever sees the gate event sees the deploy halted
                self.store.halt_deploy(request.halt_key, f"alarms: {result.reason}", now=now)
            self.store.record_gate(request.run_id, alarms_gate.NAME, result, now=now)
        return _answer(alarms_gate.NAME, result)

    @activity.defn(name=A_BAKE_PASSED)
    def record_bake_passed(self, request: BakePassedRequest) -> None:
        self.store.record_bake_passed(request.run_id, request.targets, now=parse_time(request.now))

    # ------------------------------------------------------------ a stage's steps in one activity

    @activity.defn(name=A_ENTER)
    def enter_stage(self, request: StageEntryRequest) -> StageEntryAnswer:
        """One round at a stage's entry (A_ENTER): each step as its own activity does it, so a
        retried round repeats nothing (the run is started once, a claimed run is claimed again
        without a write, gate records change only with their result)."""
        gates = request.gates
        run_id = gates.run_id
        if request.start:
            run_id = self.store.start_stage_run(gates.execution, gates.stage, now=parse_time(gates.now)).id
        rivals = self.stage_rivals(RivalsRequest(run_id))
        if rivals.newer_deployed is not None or rivals.newer_waiting is not None:
            return StageEntryAnswer(run_id, rivals, [], None)
        answers = self.entry_gates(replace(gates, run_id=run_id))
        if any(answer.result != "pass" for answer in answers):
            return StageEntryAnswer(run_id, rivals, answers, None)
        claim = self.claim_stage(ClaimRequest(run_id, "deploying", gates.now, artifact=request.artifact, events=[
            EventSpec("stage_started", {"artifact": request.artifact}, "stage_started")]))
        return StageEntryAnswer(run_id, rivals, answers, claim)

    @activity.defn(name=A_BAKE_ROUND)
    def bake_round(self, request: BakeRoundRequest) -> list[GateAnswer]:
        """One round of the bake (A_BAKE_ROUND); each step idempotent as on its own."""
        return self._bake_round(request, None)

    def _bake_round(self, request: BakeRoundRequest, run: StageRunRecord | None,
                    held: list[tuple[str, GateResult]] | None = None) -> list[GateAnswer]:
        """A_BAKE_ROUND's round; `run`: the stage run as the caller read it after its last
        change (None: read it here); `held`: see `_bake_gates`."""
        gates = request.gates
        if request.start_seconds is not None:
            self.set_stage_status(StageStatusRequest(gates.run_id, "baking", gates.now, events=[
                EventSpec("bake_started", {"duration_s": request.start_seconds}, "bake_started")]))
            run = None  # `baking` and bake_started were just written
        answers = self._bake_gates(gates, self.store.stage_run(gates.run_id) if run is None else run, held)
        if all(answer.result == "pass" for answer in answers):
            self.record_bake_passed(BakePassedRequest(gates.run_id, request.targets, gates.now))
            self.set_stage_status(StageStatusRequest(gates.run_id, request.passed_status, gates.now, events=[
                EventSpec("bake_finished", {"result": "succeeded",
                                            "reason": "; ".join(answer.reason for answer in answers)},
                          "bake_finished")]))
        return answers

    @activity.defn(name=A_BAKE)
    async def bake_stage(self, request: BakeRoundRequest) -> BakeAnswer:
        """A stage's bake in one activity (A_BAKE): a round as A_BAKE_ROUND judges and records
        it, at once and then every `poll.gates` (earlier when the gates' `until` says nothing can
        pass before, later never), or at once when this process's alarm evaluator wakes the stage
        (`wakeups`), until a gate fails or all pass. Why: a round per activity cost a trip through
        Temporal and two workflow tasks, and with 100 executions baking the rounds queued there
        for seconds (benchmarks/RESULTS.md, issue 14). The rounds run on threads of their own
        (the store, Prometheus and commands block); the activity heartbeats after each one, and
        stops without recording once the run has left `baking` (the workflow cancelled it).
        Answers after BAKE_SPAN_SECONDS of waiting with `decided` false."""
        self.prepared.open(request.gates.run_id)
        try:
            return await self._bake(request)
        finally:
            self.prepared.close(request.gates.run_id)

    async def _bake(self, request: BakeRoundRequest) -> BakeAnswer:
        """`bake_stage`'s rounds."""
        loop = asyncio.get_running_loop()
        gates = request.gates
        span_ends = loop.time() + BAKE_SPAN_SECONDS
        start = request.start_seconds
        context = contextvars.copy_context()  # the activity's (its info, for the keys)
        started: list[tuple[datetime, asyncio.Future[tuple[list[GateAnswer] | None, Future[object] | None]]]] = []

        def start_round() -> None:
            """The next round, under way on the bake's threads (also called by `wakeups.notify`)."""
            now = self._now()
            this = replace(request, gates=replace(gates, now=format_time(now)), start_seconds=start)
            started.append((now, loop.run_in_executor(self._bake_threads, context.copy().run,
                                                      self._bake_round_rolling_back, this)))

        while True:
            if not started:
                start_round()
            now, round_ = started.pop()
            answers, rollback = await self._beating(round_)
            if rollback is not None:
                return BakeAnswer(answers or [], format_time(now), True, finished=await self._rolled_back(rollback))
            if answers is None:
                # Not baking any more. Passed and moved on (by an earlier bake activity of this
                # run that a `wake` replaced): that is this bake's answer too. Rolled back by
                # such a bake (`rolls_back`): its end. Anything else (cancelled by the
                # workflow): nothing more to judge, and said so.
                status = self.store.stage_run(gates.run_id).status
                if status in (StageRunStatus.SUCCEEDED, StageRunStatus.AWAITING_PROMOTION):
                    return BakeAnswer([], format_time(now), True)
                if request.rolls_back:
                    finished = await self._rollback_found(gates)
                    if finished is not None:
                        return BakeAnswer([], format_time(now), True, finished=finished)
                    status = self.store.stage_run(gates.run_id).status
                return BakeAnswer([], format_time(now), False, str(status))
            start = None
            if bake_failure(answers) is not None or all(a.result == "pass" for a in answers):
                return BakeAnswer(answers, format_time(now), True)
            activity.heartbeat()
            if loop.time() >= span_ends:
                return BakeAnswer(answers, format_time(now), False)
            untils = [None if a.until is None else parse_time(a.until) for a in answers if a.result == "wait"]
            seconds = min(float(gates.poll_gates_seconds), next_round_seconds(untils, self._now(),
                                                                              gates.poll_gates_seconds))
            await self.wakeups.wait((gates.pipeline, gates.stage), seconds, start_round)

    def _bake_round_rolling_back(self, request: BakeRoundRequest
                                 ) -> tuple[list[GateAnswer] | None, Future[object] | None]:
        """`_bake_round_while_baking`'s round, and when a gate failed it and the bake `rolls_back`,
        its rollback (patch `bake-rolls-back`) started on a thread of its own
        (activities/rollbacks.py), to be waited for to its end even when the workflow stops waiting
        for this bake. Started from the round's thread, not from the event loop once the round's
        answer reached it: with 100 bakes failing at once, that hop through the loop took 0.4 s
        median and 0.8 s at worst (benchmarks/RESULTS.md, issue 14)."""
        held: list[tuple[str, GateResult]] | None = [] if request.rolls_back else None
        answers = self._bake_round_while_baking(request, held)
        failure = None if answers is None or not request.rolls_back else bake_failure(answers)
        gates = request.gates
        if failure is None:
            if answers is not None and request.rolls_back and not all(a.result == "pass" for a in answers):
                self.prepared.prepare(gates.run_id, partial(read_inputs, self.store, self.artifacts, gates.pipeline,
                                                            gates.stage, gates.artifact))
            return answers, None
        trigger, reason = failure
        rollback = StageRollbackRequest(
            gates.run_id, gates.execution, gates.pipeline, gates.repo, gates.stage, gates.artifact, reason, trigger,
            gates.now, gates.now, [EventSpec("bake_finished", {"result": "failed", "reason": reason}, "bake_finished")],
            True)
        return answers, self.rollbacks.start(gates.run_id, partial(self._roll_back, rollback,
                                                                    self.prepared.take(gates.run_id), held or ()))

    async def _roll_back_here(self, request: StageRollbackRequest) -> ExecutionOutcome:
        """A rollback a bake carries on (see `_bake_round_rolling_back`), on a thread of its own."""
        return await self._rolled_back(self.rollbacks.start(request.run_id, partial(self._roll_back, request)))

    @staticmethod
    async def _rolled_back(future: Future[object]) -> ExecutionOutcome:
        """How the execution ended by the rollback of `future` (a `finish` one), once it has."""
        answer = await finishing(future, HEARTBEAT_SECONDS)
        assert isinstance(answer, StageRollbackAnswer)
        return ExecutionOutcome(answer.outcome, answer.ended)

    async def _rollback_found(self, gates: BakeGatesRequest) -> ExecutionOutcome | None:
        """How the execution ended by the rollback of the run that a bake activity began
        (`rolls_back`): the one running in this process, waited for; one this activity's earlier
        attempt began (its process stopped: its keys are this attempt's), carried on; one that
        already ended it (the store). None: none of these (the workflow's A_ROLL_BACK `adopt`
        deals with a rollback run by another process)."""
        future = self.rollbacks.running(gates.run_id)
        if future is not None:
            return await self._rolled_back(future)
        run = self.store.stage_run(gates.run_id)
        if run.status is StageRunStatus.ROLLING_BACK and self.store.event_by_key(self._key("rollback_started")):
            return await self._roll_back_here(self._rollback_from_store(StageRollbackRequest(
                gates.run_id, gates.execution, gates.pipeline, gates.repo, gates.stage, gates.artifact, "", "",
                gates.now, gates.now, [], True)))
        return self._ended_by_rollback(gates.execution, gates.run_id)

    def _ended_by_rollback(self, execution: str, run_id: int) -> ExecutionOutcome | None:
        """The execution's end when a rollback of stage run `run_id` recorded it (`finish`)."""
        if self.store.stage_run(run_id).status not in (StageRunStatus.ROLLED_BACK, StageRunStatus.FAILED):
            return None
        record = self.store.execution(execution)
        if record is None or record.status not in (ExecutionStatus.ROLLED_BACK, ExecutionStatus.FAILED):
            return None
        return ExecutionOutcome(str(record.status), record.reason)

    def _rollback_from_store(self, request: StageRollbackRequest) -> StageRollbackRequest:
        """`request` with the reason, trigger and time of the rollback already begun on its stage
        run (the run's reason; its last `rollback_started`), and no events to write again."""
        run = self.store.stage_run(request.run_id)
        started = [event for event in self.store.events(execution=request.execution, types=["rollback_started"])
                   if event.stage == request.stage]
        trigger = str(started[-1].data.get("trigger", "")) if started else ""
        triggered = started[-1].time if started else request.triggered
        return replace(request, reason=run.reason or "", trigger=trigger, triggered=triggered, now=triggered,
                       events=[], adopt=False)

    @staticmethod
    async def _beating(round_: asyncio.Future[T]) -> T:
        """A round's result, heartbeating while it runs: two metric commands may take 30 s each,
        longer than the heartbeat timeout."""
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(round_), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                activity.heartbeat()

    def _bake_round_while_baking(self, request: BakeRoundRequest,
                                 held: list[tuple[str, GateResult]] | None = None) -> list[GateAnswer] | None:
        """A_BAKE_ROUND's round, unless the run is no longer baking (None): its first round moves
        it to `baking`, and after that a run that left it was ended by its workflow. A first round
        that finds the run past its deploy and tests (the bake activity a `wake` replaced got
        there first) is not a first round: it neither writes `baking` again nor judges a run that
        has moved on (passed, rolled back)."""
        run = self.store.stage_run(request.gates.run_id)
        if request.start_seconds is not None and run.status in (StageRunStatus.DEPLOYING, StageRunStatus.TESTING):
            return self._bake_round(request, None, held)
        if run.status is not StageRunStatus.BAKING:
            return None
        return self._bake_round(replace(request, start_seconds=None), run, held)

    # ------------------------------------------------------------ rollback

    @activity.defn(name=A_ROLLBACK_PLAN)
    def plan_rollback(self, request: RollbackPlanRequest) -> RollbackPlanAnswer:
        """The rollback plan of a stage away from `replacing`: the stage's targets as the replaced
        artifact's definition lists them (its deploy touched those hosts), each with its last good
        artifact and that artifact's own definition (whose hooks the rollback runs)."""
        return self._plan_rollback(request, None)

    def _plan_rollback(self, request: RollbackPlanRequest, inputs: PlanInputs | None) -> RollbackPlanAnswer:
        """`plan_rollback` from `inputs` read ahead (rollback_inputs.py; None: read them now).
        What may have changed since they were read is judged now: each candidate's content
        against its sha256, and the blocklist."""
        if inputs is None or (inputs.pipeline, inputs.replacing) != (request.pipeline, request.replacing) or (
                request.to is not None and request.to not in inputs.records):
            inputs = read_inputs(self.store, self.artifacts, request.pipeline, request.stage, request.replacing,
                                 request.to)
        stage = inputs.stage
        if stage is None:
            return RollbackPlanAnswer([])
        intact = {artifact for artifact in inputs.records if self.artifacts.intact(artifact)}
        now = parse_time(request.now) if request.now is not None else self._now()
        blocklisted = self._blocklisted(request.pipeline, request.stage, intact - {request.replacing}, now)
        try:
            plan = plan_rollback(stage, request.replacing, inputs.touched, inputs.history, blocklisted=blocklisted,
                                 intact=intact, to=request.to)
        except Refused as refused:  # `--to` names an artifact that cannot be restored
            return RollbackPlanAnswer([], refused.reason, list(stage.hosts))
        targets: list[RollbackTarget] = []
        for target in plan.targets:
            record = None if target.artifact is None else inputs.records.get(target.artifact)
            targets.append(RollbackTarget(target.target, list(target.hosts), target.artifact,
                                          None if record is None else record.commit,
                                          None if record is None else record.document))
        return RollbackPlanAnswer(targets, None, list(stage.hosts))

    @activity.defn(name=A_ROLLED_BACK)
    def record_rolled_back(self, request: RolledBackRequest) -> None:
        """`artifact` was rolled back from the target. Idempotent for a retried activity: nothing
        is written when that rollback is already recorded after the artifact's last bake pass
        there (a second record would state the same fact)."""
        latest: tuple[str, datetime] | None = None
        for event in self.store.target_history(request.pipeline, request.stage):
            if event.target == request.target and event.artifact == request.artifact:
                latest = ("rolled_back" if isinstance(event, RolledBackFrom) else "bake_passed", event.at)
        if latest is not None and latest[0] == "rolled_back":
            return
        self.store.record_rolled_back(request.pipeline, request.stage, request.target, request.artifact,
                                      now=parse_time(request.now))

    @activity.defn(name=A_ROLL_BACK)
    def roll_back_stage(self, request: StageRollbackRequest) -> StageRollbackAnswer:
        """An automatic rollback in one activity (A_ROLL_BACK): the steps the workflow took one
        activity each before (plan, `rolling_back`, the deploy, the targets' records, the end),
        so that a failed bake reaches its first rollback hook without four more trips through
        Temporal (benchmarks/RESULTS.md, issue 14: 100 rollbacks at once queued 8.5 s for the
        plan and the status, then 10.2 s for the deploy). Each step is idempotent as on its own:
        a retried attempt plans again (nothing the plan reads has changed), writes `rolling_back`
        only while the run has not ended, reports the hooks its earlier attempt completed without
        running them again (the deploy's keys are this activity's), records each target once and
        ends the run once. ActivityError in the workflow only when every attempt failed. With
        `adopt`: the rollback a bake activity began (patch `bake-rolls-back`), waited for when it
        runs in this process, answered from the store when it ended, else carried on."""
        if request.adopt:
            return self._adopt_rollback(request)
        return self._roll_back(request)

    def _adopt_rollback(self, request: StageRollbackRequest) -> StageRollbackAnswer:
        future = self.rollbacks.running(request.run_id)
        if future is not None:
            with heartbeating():
                while True:
                    try:  # in steps: a cancel raised into this thread (worker shutdown) gets through
                        answer = future.result(timeout=1.0)
                        break
                    except TimeoutError:
                        continue
            assert isinstance(answer, StageRollbackAnswer)
            return answer
        ended = self._ended_by_rollback(request.execution, request.run_id)
        if ended is not None:
            return StageRollbackAnswer(ended.status, "", ended.reason)
        status = self.store.stage_run(request.run_id).status
        if status is not StageRunStatus.ROLLING_BACK:
            # Nothing began it after all: nothing to adopt. The bake's failure is not known here.
            raise ApplicationError(f"stage run {request.run_id} has no rollback to adopt ({status})",
                                   non_retryable=True)
        return self._roll_back(self._rollback_from_store(request))

    def _roll_back(self, request: StageRollbackRequest, inputs: PlanInputs | None = None,
                   failed_round: Sequence[tuple[str, GateResult]] = ()) -> StageRollbackAnswer:
        """A_ROLL_BACK's rollback (see there), in the caller's activity: its keys and attempt;
        `inputs`: its plan's, read ahead by its bake; `failed_round`: the failing round's gates
        its bake held back, recorded here with `rolling_back` in one write."""
        now = parse_time(request.now)
        plan = self._plan_rollback(RollbackPlanRequest(request.pipeline, request.stage, request.replacing), inputs)
        run = self.store.stage_run(request.run_id)
        started = [*request.events, rollback_started(plan, request.trigger, ENGINE_ACTOR)]
        if failed_round:
            # A bake's failing round: only a run still baking rolls back. One that left its bake
            # meanwhile (the workflow cancelled it while the round ran) keeps its status; its round
            # is recorded, and nothing is redeployed.
            moved = self.store.fail_stage_run(
                request.run_id, failed_round, StageRunStatus.ROLLING_BACK, now=now, reason=request.reason,
                events=self._stage_events(request.run_id, started, now, run), only_from=StageRunStatus.BAKING)
            if moved.status is not StageRunStatus.ROLLING_BACK:
                return StageRollbackAnswer(str(moved.status), "nothing restored", None)
        elif run.status not in TERMINAL_STAGE_RUN:
            self._set_stage_status(StageStatusRequest(request.run_id, "rolling_back", request.now, request.reason,
                                                      events=started), run)
        parts = restored_parts(request.stage, plan.targets)
        ok = True
        if parts:
            deployed = self.run_deploy(DeployRequest(
                request.execution, request.pipeline, request.repo, request.stage, plan.stage_hosts,
                [deploy_target(part) for part in parts], True, halt_key(request.execution, request.run_id, rollback=True)))
            ok = deployed.ok
        ended = self._now()
        if ok:
            for part in parts:
                self.record_rolled_back(RolledBackRequest(request.pipeline, request.stage, part.plan.target,
                                                          request.replacing, format_time(ended)))
        end = rollback_end(parts, ok, parse_time(request.triggered), ended)
        finished = format_time(max(ended, now))
        self.set_stage_status(StageStatusRequest(request.run_id, end.run_status, finished, events=[end.event]))
        reason = rolled_back_reason(request.stage, request.reason, end.restored_to)
        if request.finish:  # idempotent on a retry: the same key as A_EXECUTION_STATUS would use
            self.set_execution_status(ExecutionStatusRequest(request.execution, str(end.outcome), finished, reason))
        return StageRollbackAnswer(str(end.outcome), end.restored_to, reason if request.finish else None)

    # ------------------------------------------------------------ supersede, retry, manual rollback (step 4)

    @activity.defn(name=A_RIVALS)
    def stage_rivals(self, request: RivalsRequest) -> RivalsAnswer:
        found = self.store.stage_rivals(request.run_id)
        return RivalsAnswer(found.newer_deployed, found.newer_waiting, list(found.older_waiting),
                            list(found.older_awaiting))

    @activity.defn(name=A_CLAIM)
    def claim_stage(self, request: ClaimRequest) -> ClaimAnswer:
        """Take the stage for a deploy or a rollback (EngineStore.claim_stage: one transaction)."""
        now = parse_time(request.now)
        events = self._stage_events(request.run_id, request.events, now)
        try:
            result, by, found = self.store.claim_stage(request.run_id, StageRunStatus(request.status), now=now,
                                                       reason=request.reason, artifact=request.artifact,
                                                       events=events)
        except IllegalTransition as error:
            # The run moved on meanwhile (say, an automatic rollback ended it rolled_back): the
            # caller decides; retrying the activity would only fail again.
            return ClaimAnswer("illegal", str(error), [])
        return ClaimAnswer(str(result), by, list(found.older_awaiting))

    @activity.defn(name=A_RETRIED)
    def record_retry(self, request: RetryRecordRequest) -> None:
        """A retry run's first step: the execution `running` again and its `retried` event (a
        retried activity writes neither twice: the status compares, the event has a key)."""
        now = parse_time(request.now)
        execution = self.store.set_execution_status(request.execution, ExecutionStatus.RUNNING, now=now)
        self.store.append_event(draft("retried", time=now, actor=request.actor, pipeline=execution.pipeline,
                                      execution=request.execution, stage=request.stage,
                                      data={"reason": request.reason}), key=self._key("retried"))

    @activity.defn(name=A_BLOCKERS)
    def rollback_blockers(self, request: BlockersRequest) -> BlockersAnswer:
        """What a manual rollback still waits for: executions of `request.executions` still
        `running`, and other executions occupying the stage (the rollback cancels each); and the
        status of the stage run it will move."""
        waiting: list[str] = []
        for ident in request.executions:
            execution = self.store.execution(ident)
            if execution is not None and execution.status is ExecutionStatus.RUNNING:
                waiting.append(ident)
        for occupant in self.store.occupants(request.pipeline, request.stage):
            if occupant.execution != request.deployer and occupant.execution not in waiting:
                waiting.append(occupant.execution)
        return BlockersAnswer(waiting, str(self.store.stage_run(request.run_id).status))

    @activity.defn(name=A_PAUSE)
    def pause_pipeline(self, request: PauseRequest) -> None:
        """A manual rollback pauses the pipeline (already paused is fine)."""
        try:
            self.store.set_paused(request.pipeline, True, actor=request.actor, now=parse_time(request.now),
                                  reason=request.reason, key=self._key("paused"))
        except Refused:
            pass

    def all(self) -> list[Any]:
        """Every activity, for a worker that serves them all."""
        return [self.policy_check, self.build, self.run_hook, self.run_deploy, self.roll_back_stage, self.bake_stage,
                self.halt_deploy,
                self.run_stage_tests, self.enter_stage, self.bake_round, self.start_stage_run, self.entry_gates, self.set_stage_status, self.append_events, self.set_execution_status, self.bake_gate,
                self.record_bake_passed, self.plan_rollback, self.record_rolled_back, self.stage_rivals,
                self.claim_stage, self.record_retry, self.rollback_blockers, self.pause_pipeline, self.bake_gates,
                self.alarm_tripwire]
