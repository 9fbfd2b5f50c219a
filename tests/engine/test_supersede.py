"""Supersede (domain/supersede.py) and the store's atomic stage claim (EngineStore.claim_stage)."""

from __future__ import annotations

import pytest
from engine_helpers import at

from pipewarden.engine.domain.status import ExecutionStatus as E
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.domain.supersede import ClaimResult, RunAtStage, claim, rivals
from pipewarden.engine.store import EngineStore

W, D, A = S.WAITING, S.DEPLOYING, S.AWAITING_PROMOTION


def run(number: int, status: S, *, deployed: bool | None = None, running: bool = True) -> RunAtStage:
    return RunAtStage(f"shop-{number}", number, running, status,
                      status not in (W,) if deployed is None else deployed)


def test_a_newer_waiting_execution_supersedes_the_older_waiting_one() -> None:
    runs = [run(1, S.BAKING), run(2, W), run(3, W)]
    assert rivals("shop-2", 2, runs).newer == "shop-3"
    assert rivals("shop-3", 3, runs).older_waiting == ("shop-2",)
    assert rivals("shop-3", 3, runs).occupant == "shop-1"
    assert claim("shop-3", 3, runs, deploy=True) == (ClaimResult.BUSY, "shop-1")
    assert claim("shop-2", 2, runs, deploy=True) == (ClaimResult.SUPERSEDED, "shop-3")


def test_a_newer_deploy_supersedes_whatever_became_of_it() -> None:
    # shop-3 deployed the stage and was rolled back there; shop-2 (a slow build) arrives later
    runs = [run(3, S.ROLLED_BACK, running=False), run(2, W)]
    found = rivals("shop-2", 2, runs)
    assert (found.newer_deployed, found.newer_waiting, found.occupant) == ("shop-3", None, None)
    assert claim("shop-2", 2, runs, deploy=True) == (ClaimResult.SUPERSEDED, "shop-3")
    # a rollback never supersedes: it only waits for the stage to be free
    assert claim("shop-2", 2, runs, deploy=False) == (ClaimResult.CLAIMED, None)


def test_awaiting_promotion_older_ones_and_ended_ones() -> None:
    runs = [run(1, A), run(2, W, running=False), run(4, W), run(5, S.FAILED, deployed=False, running=False)]
    found = rivals("shop-4", 4, runs)
    assert found.older_awaiting == ("shop-1",) and found.older_waiting == ()
    assert found.newer is None  # shop-5 failed at the entry: it neither waits nor deployed
    assert claim("shop-4", 4, runs, deploy=True) == (ClaimResult.CLAIMED, None)


def test_each_execution_counts_by_its_latest_run_but_any_run_may_have_deployed() -> None:
    runs = [run(3, S.FAILED, deployed=True, running=True), run(3, W), run(2, W)]
    found = rivals("shop-2", 2, runs)
    assert (found.newer_deployed, found.newer_waiting) == ("shop-3", "shop-3")
    assert rivals("shop-3", 3, runs).older_waiting == ("shop-2",)



def test_claim_stage_moves_only_a_run_that_may_take_the_stage(store: EngineStore) -> None:
    ids = []
    for n in (1, 2, 3):
        execution = store.create_execution("shop", f"{n:040x}", trigger="release", now=at(n))
        store.set_execution_artifact(execution.id, f"{n:012x}")
        ids.append(store.start_stage_run(execution.id, "beta", now=at(n)).id)
    first, second, third = ids
    result, by, found = store.claim_stage(first, D, now=at(4))
    assert (result, by) == (ClaimResult.SUPERSEDED, "shop-3") and found.older_waiting == ()
    assert store.stage_run(first).status is W  # nothing written
    assert store.stage_rivals(third).older_waiting == ("shop-1", "shop-2")
    assert store.claim_stage(third, D, now=at(5))[:2] == (ClaimResult.CLAIMED, None)
    assert store.claim_stage(third, D, now=at(6))[:2] == (ClaimResult.CLAIMED, None)  # a retried activity
    run = store.stage_run(third)
    assert run.status is D and run.deployed
    assert store.claim_stage(second, D, now=at(7))[:2] == (ClaimResult.SUPERSEDED, "shop-3")
    # a manual rollback of shop-1's run waits while shop-3 occupies the stage, then takes it
    store.set_stage_run_status(first, S.CANCELLED, now=at(8))
    assert store.claim_stage(first, S.ROLLING_BACK, now=at(9))[:2] == (ClaimResult.BUSY, "shop-3")
    store.set_stage_run_status(third, S.FAILED, now=at(10))
    store.set_execution_status("shop-3", E.FAILED, now=at(10))
    assert store.claim_stage(first, S.ROLLING_BACK, now=at(11))[:2] == (ClaimResult.CLAIMED, None)
    with pytest.raises(ValueError):
        store.claim_stage(second, S.SUCCEEDED, now=at(12))
