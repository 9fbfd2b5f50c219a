"""What the store gives back: frozen values, times as aware UTC datetimes, statuses as enums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipewarden.engine.domain.status import ExecutionStatus, StageRunStatus


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    name: str
    last_commit: str | None
    paused: bool
    paused_by: str | None
    paused_reason: str | None
    repo: str | None = None
    branch: str | None = None
    path: str | None = None
    definition: dict[str, Any] | None = None
    """The newest valid definition the poller read (the loader's dict), with its commit."""
    definition_commit: str | None = None
    team: str | None = None
    org: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    id: str
    pipeline: str
    number: int
    commit: str
    artifact: str | None
    status: ExecutionStatus
    trigger: str
    stage: str | None
    started: datetime
    finished: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class StageRunRecord:
    id: int
    execution: str
    pipeline: str
    stage: str
    attempt: int
    status: StageRunStatus
    artifact: str | None
    started: datetime
    finished: datetime | None
    deployed: bool
    bake_started: datetime | None
    bake_passed: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class HostRecord:
    """Which artifact a host runs (the last deploy whose every hook succeeded, None before) and its
    state: `ok`, `deploying` (hooks of `deploying_artifact` running or cut off) or `failed`."""

    pipeline: str
    host: str
    stage: str
    target: str
    artifact: str | None
    state: str
    deploying_artifact: str | None
    execution: str | None


@dataclass(frozen=True, slots=True)
class HookRunRecord:
    id: int
    key: str
    attempt: int
    execution: str
    pipeline: str
    stage: str
    target: str
    host: str
    hook: str
    artifact: str
    rollback: bool
    started: datetime
    finished: datetime | None
    exit_code: int | None
    timed_out: bool
    interrupted: bool
    duration_ms: int | None
    log: str | None
    pgid: int | None

    @property
    def completed(self) -> bool:
        """Its result is committed (with its event): a retried activity must not run it again."""
        return self.finished is not None and not self.interrupted

    @property
    def succeeded(self) -> bool:
        return self.completed and self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True, slots=True)
class HookRunStart:
    """What `begin_hook_run` found and did: `run` is the attempt to run now, or the completed run
    to report without running (`completed`); `interrupted` is an earlier attempt that a crash cut
    off, now recorded as such (its leftover process group `interrupted.pgid` must be killed)."""

    run: HookRunRecord
    completed: bool
    interrupted: HookRunRecord | None = None


@dataclass(frozen=True, slots=True)
class SyntheticResult:
    """One synthetic request to one host (engine.md "Synthetics"): sent at `time`; `success` when
    the response's `status` was the request's `expect_status` within the timeout; `status` None
    when no response came (`error` says why: a timeout, a refused connection ...)."""

    pipeline: str
    synthetic: str
    stage: str
    host: str
    method: str
    path: str
    time: datetime
    success: bool
    status: int | None
    error: str | None
    duration_ms: int
