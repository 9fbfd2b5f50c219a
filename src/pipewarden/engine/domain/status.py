"""The status values of executions and stage runs, and which may follow which.

The value sets are engine.md's and closed. The tables below are the one place that says how a
status may change (ARCHITECTURE.md habit 4); workflows and the store call `transition` and get an
IllegalTransition for any other move. A status never "changes" to itself: callers that may repeat
a step (a retried activity) compare before they write.

Execution (engine.md, "Executions", "Failure", "Rollback"):

    running -> succeeded | failed | rolled_back | superseded | cancelled
    failed -> running                      `retry ID --stage S`
    any ended status -> rolled_back | failed
        a manual `rollback` is recorded on the execution that deployed the artifact it replaces,
        "wherever that execution is now", "even if it had succeeded": rolled_back when a target
        was restored and no rollback hook failed, else failed.

Stage run (its status in `status` and `executions show`):

    pending -> waiting                    the execution reaches the stage's entry
    pending -> cancelled                  superseded or cancelled before reaching it
    waiting -> deploying                  every entry gate passes
    waiting -> failed                     a gate `fail` (policy, blocklist) or `reject`
    waiting -> cancelled                  superseded at the entry, or `cancel`
    deploying -> testing | baking         every target deployed (baking at once without tests)
    testing -> baking                     the tests passed
    baking -> awaiting_promotion          bake passed, `promotion: manual`
    baking -> succeeded                   bake passed, `promotion: automatic` (or last stage)
    awaiting_promotion -> succeeded       `promote`
    awaiting_promotion -> failed          `reject`
    awaiting_promotion -> cancelled       superseded (a newer execution passed the entry), `cancel`
    deploying | testing | baking -> failed        a hook, test or bake failed, `rollback: manual`
    deploying | testing | baking -> cancelled     `cancel` (running hooks finish, no rollback)
    deploying | testing | baking -> rolling_back  failed with `rollback: automatic`, or `rollback`
    awaiting_promotion | succeeded | failed | cancelled -> rolling_back
                                          a manual `rollback` of the artifact this run deployed
    rolling_back -> rolled_back           at least one target restored, no rollback hook failed
    rolling_back -> failed                otherwise (the run stays failed for a person to act)

`retry` does not move a stage run: it starts a new one (attempt + 1) from `waiting`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from pipewarden.engine.domain.errors import IllegalTransition


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


class StageRunStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    DEPLOYING = "deploying"
    TESTING = "testing"
    BAKING = "baking"
    AWAITING_PROMOTION = "awaiting_promotion"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


E = ExecutionStatus
S = StageRunStatus

EXECUTION_INITIAL = E.RUNNING
STAGE_RUN_INITIAL = S.PENDING

TERMINAL_EXECUTION: frozenset[ExecutionStatus] = frozenset(E) - {E.RUNNING}
"""The execution has ended (its workflow is done). A later `rollback` or `retry` may still
change the status, as the table says; nothing else does."""

TERMINAL_STAGE_RUN: frozenset[StageRunStatus] = frozenset({S.SUCCEEDED, S.FAILED, S.ROLLED_BACK, S.CANCELLED})
"""The stage run has ended; only a manual `rollback` of its artifact moves it again."""

OCCUPYING: frozenset[StageRunStatus] = frozenset({S.DEPLOYING, S.TESTING, S.BAKING, S.ROLLING_BACK})
"""A stage run in one of these holds its stage: another execution waits at the entry (`stage_busy`)."""

HOLDING: frozenset[StageRunStatus] = OCCUPYING | {S.AWAITING_PROMOTION, S.FAILED}
"""Statuses in which a stage run is the stage's `execution` in `status` (occupying it, or holding
it `failed` or `awaiting_promotion`). A run `failed` at its entry gates holds nothing: the caller
knows whether it deployed."""

_Status = TypeVar("_Status", ExecutionStatus, StageRunStatus)

EXECUTION_TRANSITIONS: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    E.RUNNING: frozenset({E.SUCCEEDED, E.FAILED, E.ROLLED_BACK, E.SUPERSEDED, E.CANCELLED}),
    E.FAILED: frozenset({E.RUNNING, E.ROLLED_BACK}),
    E.SUCCEEDED: frozenset({E.ROLLED_BACK, E.FAILED}),
    E.SUPERSEDED: frozenset({E.ROLLED_BACK, E.FAILED}),
    E.CANCELLED: frozenset({E.ROLLED_BACK, E.FAILED}),
    E.ROLLED_BACK: frozenset({E.FAILED}),
}

STAGE_RUN_TRANSITIONS: Mapping[StageRunStatus, frozenset[StageRunStatus]] = {
    S.PENDING: frozenset({S.WAITING, S.CANCELLED}),
    S.WAITING: frozenset({S.DEPLOYING, S.FAILED, S.CANCELLED}),
    S.DEPLOYING: frozenset({S.TESTING, S.BAKING, S.FAILED, S.CANCELLED, S.ROLLING_BACK}),
    S.TESTING: frozenset({S.BAKING, S.FAILED, S.CANCELLED, S.ROLLING_BACK}),
    S.BAKING: frozenset({S.AWAITING_PROMOTION, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ROLLING_BACK}),
    S.AWAITING_PROMOTION: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ROLLING_BACK}),
    S.SUCCEEDED: frozenset({S.ROLLING_BACK}),
    S.FAILED: frozenset({S.ROLLING_BACK}),
    S.CANCELLED: frozenset({S.ROLLING_BACK}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.FAILED}),
    S.ROLLED_BACK: frozenset(),
}


def can_transition(current: ExecutionStatus | StageRunStatus, new: ExecutionStatus | StageRunStatus) -> bool:
    """True when the table lets `new` follow `current` (both of one kind; never a status to itself)."""
    if isinstance(current, ExecutionStatus) and isinstance(new, ExecutionStatus):
        return new in EXECUTION_TRANSITIONS.get(current, frozenset())
    if isinstance(current, StageRunStatus) and isinstance(new, StageRunStatus):
        return new in STAGE_RUN_TRANSITIONS.get(current, frozenset())
    return False


def transition(current: _Status, new: _Status) -> _Status:
    """`new` when it may follow `current`; IllegalTransition otherwise."""
    if not can_transition(current, new):
        kind = "execution" if isinstance(current, ExecutionStatus) else "stage run"
        raise IllegalTransition(kind, str(current), str(new))
    return new


def execution_status(value: str) -> ExecutionStatus:
    """The ExecutionStatus of a stored value; ValueError for a value outside engine.md's set."""
    return ExecutionStatus(value)


def stage_run_status(value: str) -> StageRunStatus:
    """The StageRunStatus of a stored value; ValueError for a value outside engine.md's set."""
    return StageRunStatus(value)
