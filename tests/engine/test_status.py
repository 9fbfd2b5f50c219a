"""Status values and their transition table (domain/status.py)."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.errors import IllegalTransition
from pipewarden.engine.domain.status import (
    EXECUTION_INITIAL,
    EXECUTION_TRANSITIONS,
    OCCUPYING,
    STAGE_RUN_INITIAL,
    STAGE_RUN_TRANSITIONS,
    TERMINAL_EXECUTION,
    TERMINAL_STAGE_RUN,
    ExecutionStatus,
    StageRunStatus,
    can_transition,
    transition,
)

E = ExecutionStatus
S = StageRunStatus


def test_values_are_engine_md_exactly() -> None:
    assert [s.value for s in ExecutionStatus] == [
        "running", "succeeded", "failed", "rolled_back", "superseded", "cancelled"]
    assert [s.value for s in StageRunStatus] == [
        "pending", "waiting", "deploying", "testing", "baking", "awaiting_promotion", "succeeded", "failed",
        "rolling_back", "rolled_back", "cancelled"]
    assert {s.value for s in OCCUPYING} == {"deploying", "testing", "baking", "rolling_back"}
    assert str(S.AWAITING_PROMOTION) == "awaiting_promotion"


def test_every_status_has_a_row() -> None:
    assert set(EXECUTION_TRANSITIONS) == set(ExecutionStatus)
    assert set(STAGE_RUN_TRANSITIONS) == set(StageRunStatus)


@pytest.mark.parametrize(("a", "b"), [
    (S.PENDING, S.WAITING), (S.WAITING, S.DEPLOYING), (S.DEPLOYING, S.TESTING), (S.TESTING, S.BAKING),
    (S.DEPLOYING, S.BAKING), (S.BAKING, S.AWAITING_PROMOTION), (S.AWAITING_PROMOTION, S.SUCCEEDED),
    (S.BAKING, S.SUCCEEDED), (S.DEPLOYING, S.ROLLING_BACK), (S.ROLLING_BACK, S.ROLLED_BACK),
    (S.ROLLING_BACK, S.FAILED), (S.SUCCEEDED, S.ROLLING_BACK), (S.WAITING, S.FAILED), (S.WAITING, S.CANCELLED),
    (E.RUNNING, E.SUCCEEDED), (E.FAILED, E.RUNNING), (E.SUCCEEDED, E.ROLLED_BACK), (E.SUPERSEDED, E.ROLLED_BACK),
])
def test_legal(a: ExecutionStatus | StageRunStatus, b: ExecutionStatus | StageRunStatus) -> None:
    assert can_transition(a, b)
    assert transition(a, b) is b


@pytest.mark.parametrize(("a", "b"), [
    (S.PENDING, S.DEPLOYING),           # never past the entry gates unseen
    (S.WAITING, S.ROLLING_BACK),        # nothing deployed to roll back
    (S.ROLLED_BACK, S.DEPLOYING),       # a retry is a new stage run
    (S.SUCCEEDED, S.BAKING), (S.FAILED, S.DEPLOYING), (S.CANCELLED, S.WAITING),
    (S.BAKING, S.BAKING),               # never a status to itself
    (E.SUCCEEDED, E.RUNNING), (E.CANCELLED, E.RUNNING), (E.RUNNING, E.RUNNING),
    (E.ROLLED_BACK, E.ROLLED_BACK),
])
def test_illegal(a: ExecutionStatus | StageRunStatus, b: ExecutionStatus | StageRunStatus) -> None:
    assert not can_transition(a, b)
    with pytest.raises(IllegalTransition) as raised:
        transition(a, b)
    assert raised.value.current == a.value and raised.value.new == b.value


def test_kinds_do_not_mix() -> None:
    assert not can_transition(S.FAILED, E.RUNNING)
    assert not can_transition(E.FAILED, S.ROLLING_BACK)


def _reachable(start: str, table: dict[str, frozenset[str]]) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in table[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def test_every_status_reachable_and_every_one_can_end() -> None:
    stage_table = {str(k): frozenset(map(str, v)) for k, v in STAGE_RUN_TRANSITIONS.items()}
    exec_table = {str(k): frozenset(map(str, v)) for k, v in EXECUTION_TRANSITIONS.items()}
    assert _reachable(str(STAGE_RUN_INITIAL), stage_table) == {str(s) for s in StageRunStatus}
    assert _reachable(str(EXECUTION_INITIAL), exec_table) == {str(s) for s in ExecutionStatus}
    for status in StageRunStatus:
        assert _reachable(str(status), stage_table) & {str(s) for s in TERMINAL_STAGE_RUN}
    for status in ExecutionStatus:
        assert _reachable(str(status), exec_table) & {str(s) for s in TERMINAL_EXECUTION}


def test_ended_runs_never_deploy_again() -> None:
    """Once a stage run has ended, the only way back into its stage is a rollback."""
    stage_table = {k: v for k, v in STAGE_RUN_TRANSITIONS.items()}
    for status in TERMINAL_STAGE_RUN:
        reach = _reachable(str(status), {str(k): frozenset(map(str, v)) for k, v in stage_table.items()})
        assert not reach & {"deploying", "testing", "baking", "waiting", "awaiting_promotion", "pending"}


@given(st.lists(st.integers(0, 10_000), max_size=40), st.sampled_from(list(StageRunStatus)))
def test_random_walks_of_stage_runs_stay_legal(choices: list[int], stray: StageRunStatus) -> None:
    """A walk that always picks a move from the table never raises; any move outside it does."""
    status = STAGE_RUN_INITIAL
    occupied_then_free = False
    for choice in choices:
        allowed = sorted(STAGE_RUN_TRANSITIONS[status])
        if stray not in STAGE_RUN_TRANSITIONS[status]:
            with pytest.raises(IllegalTransition):
                transition(status, stray)
        if not allowed:
            assert status is S.ROLLED_BACK
            break
        previous = status
        status = transition(status, allowed[choice % len(allowed)])
        # Leaving an occupying status always ends the occupation for good, or hands it to a rollback.
        if previous in OCCUPYING and status not in OCCUPYING:
            occupied_then_free = True
        if occupied_then_free:
            assert status not in {S.DEPLOYING, S.TESTING, S.BAKING}


@given(st.lists(st.integers(0, 10_000), max_size=30), st.sampled_from(list(ExecutionStatus)))
def test_random_walks_of_executions_stay_legal(choices: list[int], stray: ExecutionStatus) -> None:
    status = EXECUTION_INITIAL
    for choice in choices:
        if stray not in EXECUTION_TRANSITIONS[status]:
            with pytest.raises(IllegalTransition):
                transition(status, stray)
        allowed = sorted(EXECUTION_TRANSITIONS[status])
        status = transition(status, allowed[choice % len(allowed)])
        if status is not E.RUNNING:
            assert status in TERMINAL_EXECUTION
