"""The bake activity (A_BAKE, `bake_stage`) when a round finds its run no longer baking: passed and
moved on by an earlier bake activity of the run (one a `wake` replaced) is this bake's pass too;
anything else ends it with the status found, never an answer that would make the workflow start
another bake for ever. And the two activities the workflow uses when it stopped waiting for a bake
that may be rolling back (patch bake-rolls-back): the cancel that writes only over a run that can
still be cancelled, and A_ROLL_BACK `adopt` (Temporal's ActivityEnvironment, a real store)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import T0, at, stage
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pipewarden.engine.activities import engine as engine_module
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.activities.rollback_inputs import PlanInputs, read_inputs
from pipewarden.engine.contract import (
    BakeAnswer,
    BakeGatesRequest,
    BakeRoundRequest,
    EventSpec,
    StageRollbackAnswer,
    StageRollbackRequest,
    StageStatusRequest,
)
from pipewarden.engine.domain.gates import FAIL
from pipewarden.engine.domain.ids import format_time
from pipewarden.engine.domain.status import ExecutionStatus
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.store import EngineStore

COMMIT = "a" * 40


def bake_after(tmp_path: Path, *statuses: S) -> BakeAnswer:
    """Run `bake_stage` (not its first round) over a run moved through `statuses` after baking."""
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        execution = store.create_execution("shop", COMMIT, trigger="poll", now=T0)
        run = store.start_stage_run(execution.id, "beta", now=at(1))
        for second, status in enumerate((S.DEPLOYING, S.BAKING, *statuses), start=2):
            store.set_stage_run_status(run.id, status, now=at(second))
        request = BakeRoundRequest(BakeGatesRequest(run.id, execution.id, "shop", str(tmp_path), COMMIT, COMMIT[:12],
                                                    "beta", format_time(at(2)), format_time(at(9)), 1),
                                   ["beta-1"], "succeeded", None)
        answer: BakeAnswer = asyncio.run(ActivityEnvironment().run(EngineActivities(store, state).bake_stage,
                                                                   request))
        assert store.gate_evaluations(run.id) == {}  # no round was judged nor recorded
        return answer


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.AWAITING_PROMOTION])
def test_a_run_already_moved_on_by_a_pass_is_this_bakes_pass(tmp_path: Path, status: S) -> None:
    answer = bake_after(tmp_path, status)
    assert (answer.decided, answer.left, answer.gates) == (True, None, [])


def test_a_run_cancelled_meanwhile_ends_the_bake_with_its_status(tmp_path: Path) -> None:
    answer = bake_after(tmp_path, S.CANCELLED)
    assert (answer.decided, answer.left) == (False, "cancelled")


def moved_through(store: EngineStore, *statuses: S) -> tuple[str, int]:
    """(execution, stage run) with the run moved through deploying, baking, then `statuses`."""
    execution = store.create_execution("shop", COMMIT, trigger="poll", now=T0)
    run = store.start_stage_run(execution.id, "beta", now=at(1))
    for second, status in enumerate((S.DEPLOYING, S.BAKING, *statuses), start=2):
        store.set_stage_run_status(run.id, status, now=at(second))
    return execution.id, run.id


@pytest.mark.parametrize(("statuses", "answer", "after"), [
    ((), None, S.CANCELLED),
    ((S.ROLLING_BACK,), "rolling_back", S.ROLLING_BACK),
    ((S.ROLLING_BACK, S.ROLLED_BACK), "rolled_back", S.ROLLED_BACK),
    ((S.SUCCEEDED,), "succeeded", S.SUCCEEDED),
])
def test_cancel_unless_rolling_back_writes_only_over_a_run_that_can_still_be_cancelled(
        tmp_path: Path, statuses: tuple[S, ...], answer: str | None, after: S) -> None:
    """A `cancel` of a bake whose own rollback may have begun (patch bake-rolls-back)."""
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        _, run_id = moved_through(store, *statuses)
        before = len(store.events())
        request = StageStatusRequest(run_id, "cancelled", format_time(at(20)), "cancelled by dana", None,
                                     [EventSpec("cancelled", {"reason": "not today"}, "cancelled", actor="dana")],
                                     unless_rolling_back=True)
        assert ActivityEnvironment().run(EngineActivities(store, state).set_stage_status, request) == answer
        assert store.stage_run(run_id).status is after
        assert len(store.events()) == before + (1 if answer is None else 0)


def adopt(store: EngineStore, state: Path, execution: str, run_id: int) -> StageRollbackAnswer:
    request = StageRollbackRequest(run_id, execution, "shop", str(state), "beta", COMMIT[:12], "", "",
                                   format_time(at(20)), format_time(at(20)), [], True, adopt=True)
    answer: StageRollbackAnswer = ActivityEnvironment().run(EngineActivities(store, state).roll_back_stage, request)
    return answer


def test_adopt_answers_a_rollback_that_ended_the_execution_from_the_store(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        execution, run_id = moved_through(store, S.ROLLING_BACK, S.ROLLED_BACK)
        reason = "beta: datapoints: 1 negative of at most 0; rolled back (beta-1 -> 0123456789ab)"
        store.set_execution_status(execution, ExecutionStatus.ROLLED_BACK, now=at(30), reason=reason)
        before = len(store.events())
        assert adopt(store, state, execution, run_id) == StageRollbackAnswer("rolled_back", "", reason)
        assert len(store.events()) == before


def test_adopt_refuses_a_run_that_no_rollback_began(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        execution, run_id = moved_through(store)
        with pytest.raises(ApplicationError, match="has no rollback to adopt") as raised:
            adopt(store, state, execution, run_id)
        assert raised.value.non_retryable
        assert store.stage_run(run_id).status is S.BAKING


def test_a_bake_that_rolls_back_reads_its_plans_inputs_ahead_and_forgets_them_when_it_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a round that did not fail, the bake keeps its rollback plan's inputs
    (rollback_inputs.py), read once however many rounds follow; dropped when the bake ends."""
    state = tmp_path / "state"
    reads: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> PlanInputs:
        reads.append(args[4])
        # no artifact record here: as if its definition had the stage (inputs that find nothing
        # to roll back are not kept)
        return dataclasses.replace(read_inputs(*args, **kwargs), stage=stage("beta"))

    monkeypatch.setattr(engine_module, "read_inputs", counted)
    with EngineStore.for_state_dir(state) as store:
        execution, run_id = moved_through(store)
        activities = EngineActivities(store, state)
        rounds: list[int] = []
        judge = activities._bake_round_while_baking

        def counted_round(request: BakeRoundRequest, held: Any = None) -> Any:
            rounds.append(1)
            return judge(request, held)

        monkeypatch.setattr(activities, "_bake_round_while_baking", counted_round)
        request = BakeRoundRequest(BakeGatesRequest(run_id, execution, "shop", str(tmp_path), COMMIT, COMMIT[:12],
                                                    "beta", format_time(at(2)), format_time(at(9)), 1),
                                   ["beta-1"], "succeeded", None, rolls_back=True)

        async def scenario() -> tuple[BakeAnswer, int]:
            baking = asyncio.ensure_future(ActivityEnvironment().run(activities.bake_stage, request))
            for _ in range(500):  # a round every second (poll.gates 1 s): let three go by
                if len(rounds) >= 3:
                    break
                await asyncio.sleep(0.02)
            kept = len(activities.prepared)
            store.set_stage_run_status(run_id, S.CANCELLED, now=at(20))
            activities.wakeups.notify(("shop", "beta"))
            return await asyncio.wait_for(baking, 10), kept

        answer, kept = asyncio.run(scenario())
        assert len(rounds) >= 3 and kept == 1 and answer.left == "cancelled"
        assert len(activities.prepared) == 0
        assert reads == [COMMIT[:12]]  # once, for the artifact being baked


def test_a_failing_round_of_a_run_cancelled_meanwhile_is_recorded_and_rolls_nothing_back(tmp_path: Path) -> None:
    """The workflow cancelled the run while a bake's round was judging (the round's thread goes
    on): its failing round is recorded, the run stays `cancelled`, no rollback begins."""
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        execution, run_id = moved_through(store, S.CANCELLED)
        activities = EngineActivities(store, state)
        request = StageRollbackRequest(run_id, execution, "shop", str(tmp_path), "beta", COMMIT[:12],
                                       "alarms: alarm errors is firing", "alarm", format_time(at(9)),
                                       format_time(at(9)), [EventSpec("bake_finished", {"result": "failed",
                                                                                         "reason": "x"}, "bake_finished")],
                                       True)
        failed = FAIL("alarm_firing", "alarm errors is firing", inputs={"now": format_time(at(9))})
        answer: StageRollbackAnswer = ActivityEnvironment().run(
            lambda: activities._roll_back(request, None, [("alarms", failed)]))
        assert (answer.outcome, answer.restored_to) == ("cancelled", "nothing restored")
        assert store.stage_run(run_id).status is S.CANCELLED
        assert store.gate_evaluations(run_id)["alarms"].code == "alarm_firing"
        assert [e.type for e in store.events(execution=execution) if e.type in ("gate", "rollback_started",
                                                                                   "bake_finished")] == ["gate"]
