"""activities/rollbacks.py: the rollbacks bake activities run in this process (one per stage run,
on a daemon thread, found by whoever asks next), and the bake's wait for one (heartbeating; a
cancel does not stop it, a worker shutdown does). With Temporal's ActivityEnvironment."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest
from engine_helpers import stage
from temporalio.testing import ActivityEnvironment

from pipewarden.engine.activities.rollback_inputs import PlanInputs, PreparedInputs
from pipewarden.engine.activities.rollbacks import HEARTBEATS_ELSEWHERE, Rollbacks, finishing


def test_one_rollback_per_stage_run_found_while_it_runs_and_dropped_after() -> None:
    rollbacks = Rollbacks()
    release = threading.Event()
    seen: list[tuple[bool, bool]] = []

    def body() -> str:
        seen.append((HEARTBEATS_ELSEWHERE.get(), threading.current_thread().daemon))
        release.wait(10)
        return "rolled_back"

    first = rollbacks.start(7, body)
    assert rollbacks.start(7, lambda: "a second one") is first  # the running one, not a new one
    assert rollbacks.running(7) is first and rollbacks.running(8) is None
    release.set()
    assert first.result(10) == "rolled_back"
    assert seen == [(True, True)] and not HEARTBEATS_ELSEWHERE.get()
    assert rollbacks.running(7) is None


def test_an_error_of_the_rollback_reaches_whoever_waits() -> None:
    rollbacks = Rollbacks()

    def body() -> str:
        raise RuntimeError("hook runner broke")

    future = rollbacks.start(3, body)
    with pytest.raises(RuntimeError, match="hook runner broke"):
        future.result(10)
    assert rollbacks.running(3) is None


def wait_after(env: ActivityEnvironment, stop: str) -> tuple[list[object], Future[str]]:
    """finishing() in `env` over a future set 0.3 s after `stop` ('cancel' or 'shutdown') is
    sent at 0.1 s: (what the activity ended with, the future); heartbeats every 0.05 s."""
    future: Future[str] = Future()
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    async def activity_body() -> str:
        return await finishing(future, 0.05)

    async def drive() -> list[object]:
        waiting = asyncio.ensure_future(env.run(activity_body))
        await asyncio.sleep(0.1)
        if stop == "shutdown":  # as the worker does: the shutdown event, then core's cancel
            env.worker_shutdown()
        env.cancel()
        await asyncio.sleep(0.3)
        future.set_result("rolled_back")
        try:
            return [await waiting, len(beats) > 1]
        except asyncio.CancelledError as error:
            return [error, len(beats) > 1]

    return asyncio.run(drive()), future


def test_a_cancelled_bake_still_waits_for_its_rollback_and_heartbeats() -> None:
    ended, _ = wait_after(ActivityEnvironment(), "cancel")
    assert ended == ["rolled_back", True]


def test_a_worker_shutdown_stops_the_wait() -> None:
    ended, future = wait_after(ActivityEnvironment(), "shutdown")
    assert isinstance(ended[0], asyncio.CancelledError)
    assert future.result() == "rolled_back"  # the rollback itself was not stopped by it


def test_prepared_inputs_are_kept_only_while_a_bake_of_the_run_is_open() -> None:
    prepared = PreparedInputs()
    reads: list[int] = []

    def read() -> PlanInputs:
        reads.append(1)
        return PlanInputs("shop", "a" * 12, stage(), (), (), {})

    prepared.prepare(7, read)  # no bake of run 7 open (a round its cancelled bake left running)
    assert len(prepared) == 0 and reads == []
    prepared.open(7)
    prepared.prepare(7, read)
    prepared.prepare(7, read)  # kept already: not read again
    assert len(reads) == 1 and len(prepared) == 1
    taken = prepared.take(7)
    assert taken is not None and taken.replacing == "a" * 12
    assert prepared.take(7) is None  # taken once
    prepared.prepare(7, read)
    prepared.open(7)  # a `wake`: the next bake opens before the last one closes
    prepared.close(7)
    assert len(prepared) == 1  # still open: kept
    prepared.close(7)
    assert len(prepared) == 0 and len(reads) == 2
    prepared.open(8)
    prepared.prepare(8, lambda: PlanInputs("shop", "b" * 12, None, (), (), {}))
    assert prepared.take(8) is None  # nothing to roll back found: not kept, read again next time
