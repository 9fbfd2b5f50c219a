"""The bake activity (A_BAKE, `bake_stage`) when a round finds its run no longer baking: passed and
moved on by an earlier bake activity of the run (one a `wake` replaced) is this bake's pass too;
anything else ends it with the status found, never an answer that would make the workflow start
another bake for ever (Temporal's ActivityEnvironment, a real store)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_helpers import T0, at
from temporalio.testing import ActivityEnvironment

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.contract import BakeAnswer, BakeGatesRequest, BakeRoundRequest
from pipewarden.engine.domain.ids import format_time
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
