"""engine/wakeups.py: a bake waiting for its next round is woken by `notify` of its stage only; the
server's wake-up of the stages whose alarms changed (server.wake_stage, alarms.AlarmEvaluator.run)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from test_alarm_evaluator import define

from pipewarden.engine.activities.engine import engine_sources
from pipewarden.engine.alarms import AlarmEvaluator
from pipewarden.engine.server import wake_stage
from pipewarden.engine.store import EngineStore
from pipewarden.engine.store.records import StageRunRecord
from pipewarden.engine.wakeups import Stage, Wakeups


def test_notify_wakes_the_waiters_of_that_stage_only_and_at_once() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        began = time.monotonic()
        canary = asyncio.create_task(wakeups.wait(("shop", "canary"), 30))
        second = asyncio.create_task(wakeups.wait(("shop", "canary"), 30))
        other = asyncio.create_task(wakeups.wait(("shop", "prod"), 0.3))
        await asyncio.sleep(0.05)
        assert wakeups.notify(("shop", "canary")) == 2
        assert await canary is True and await second is True
        assert time.monotonic() - began < 5
        assert await other is False  # its own timeout, not the canary's notify
        assert wakeups.notify(("shop", "canary")) == 0  # nobody waits any more: nothing kept

    asyncio.run(scenario())


def test_a_notify_before_anyone_waits_is_not_kept() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        assert wakeups.notify(("shop", "canary")) == 0
        assert await wakeups.wait(("shop", "canary"), 0.1) is False

    asyncio.run(scenario())


def test_wake_stage_wakes_every_local_bake_before_its_store_read(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An alarm shared by many pipelines fires for all of them in one round: the bakes of every
    stage are woken at once, not one stage after another's store read (issue 14's fan-out)."""
    stages = [(f"shop-{n}", "canary") for n in range(3)]

    async def scenario(store: EngineStore) -> None:
        wakeups = Wakeups()
        waiters = [asyncio.create_task(wakeups.wait(stage, 30)) for stage in stages]
        await asyncio.sleep(0.05)
        original = store.stage_runs

        def slow_read(**filters: Any) -> list[StageRunRecord]:
            time.sleep(1.0)  # a busy store: the waiters must not wait for it
            return original(**filters)

        monkeypatch.setattr(store, "stage_runs", slow_read)
        began = time.monotonic()
        wake = wake_stage(store, cast(Client, None), wakeups)

        async def waking_all() -> None:
            await wake(stages)

        waking = asyncio.create_task(waking_all())
        done, _ = await asyncio.wait(waiters, timeout=0.5)
        assert len(done) == len(stages) and all(task.result() for task in done)
        assert time.monotonic() - began < 0.5
        await waking  # no stage run in the store: no signal to send

    with EngineStore.for_state_dir(tmp_path / "state") as store:
        asyncio.run(scenario(store))


def test_the_evaluator_notifies_every_changed_stage_in_one_call(tmp_path: Path) -> None:
    value = tmp_path / "value"
    value.write_text("0")
    calls: list[list[Stage]] = []

    async def notify(stages: Sequence[Stage]) -> None:
        calls.append(list(stages))

    async def scenario(store: EngineStore) -> None:
        evaluator = AlarmEvaluator(store, engine_sources(store, None), None, poll_seconds=1, notify=notify)
        stop = asyncio.Event()
        task = asyncio.create_task(evaluator.run(stop, lambda: datetime.now(UTC)))
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)

    with EngineStore.for_state_dir(tmp_path / "state") as store:
        for name in ("one", "two", "three"):
            define(store, name, value)
        asyncio.run(scenario(store))
    assert sorted(calls[0]) == [("one", "prod"), ("three", "prod"), ("two", "prod")]  # new states: one call


def test_notify_starts_each_woken_bakes_round_itself_and_one_failing_start_stops_no_other() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        started: list[str] = []

        def broken() -> None:
            raise RuntimeError("no thread left")

        waiters = [asyncio.create_task(wakeups.wait(("shop", "canary"), 30, lambda: started.append("one"))),
                   asyncio.create_task(wakeups.wait(("shop", "canary"), 30, broken)),
                   asyncio.create_task(wakeups.wait(("shop", "canary"), 30, lambda: started.append("three")))]
        await asyncio.sleep(0.05)
        assert wakeups.notify(("shop", "canary")) == 3
        assert sorted(started) == ["one", "three"]  # before notify returned, before any waiter resumed
        assert not any(task.done() for task in waiters)
        assert wakeups.notify(("shop", "canary")) == 3  # woken already, rounds under way: not started twice
        assert [await task for task in waiters] == [True, True, True]
        assert sorted(started) == ["one", "three"]

    asyncio.run(scenario())
