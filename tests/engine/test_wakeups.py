"""engine/wakeups.py: a bake waiting for its next round is woken by `notify` of its stage only."""

from __future__ import annotations

import asyncio
import time

from pipewarden.engine.wakeups import Wakeups


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
