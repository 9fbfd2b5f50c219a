"""Wake-ups inside one process: the bakes running here (A_BAKE, activities/engine.py) wait for
their next round on `Wakeups.wait`, and the server's alarm evaluator calls `notify` for a stage
whose alarms started or stopped firing or breaching, so that the bake judges it at once instead of
at its next poll (the time to react of issue 14). Bakes in another process (`pipewarden worker`)
are not reached and see the change at their next round, within one `poll.gates`.

Everything runs on one event loop (the server's, on which Temporal runs async activities).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("pipewarden.wakeups")

Stage = tuple[str, str]
"""(pipeline, stage)"""


class Wakeups:
    def __init__(self) -> None:
        self._waiting: dict[Stage, dict[asyncio.Event, Callable[[], None] | None]] = {}

    async def wait(self, stage: Stage, seconds: float, on_wake: Callable[[], None] | None = None) -> bool:
        """Sleep up to `seconds`; True when `notify(stage)` came first. `on_wake`: called by
        `notify` itself, before it returns (the bake starts its next round there: when 100 bakes
        are woken at once, each one's round is under way without waiting for the event loop to
        resume its coroutine, which took up to 0.7 s behind the rounds already running)."""
        event = asyncio.Event()
        self._waiting.setdefault(stage, {})[event] = on_wake
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))
            return True
        except TimeoutError:
            return event.is_set()
        finally:
            waiting = self._waiting.get(stage)
            if waiting is not None:
                waiting.pop(event, None)
                if not waiting:
                    del self._waiting[stage]

    def notify(self, stage: Stage) -> int:
        """Wake every bake waiting at `stage` (calling its `on_wake` first); how many there were,
        counting those woken before and not yet resumed (their round is under way)."""
        waiting = self._waiting.get(stage, {})
        for event, on_wake in list(waiting.items()):
            if event.is_set():
                continue  # woken already, not yet resumed: its round is started
            if on_wake is not None:
                try:
                    on_wake()
                except Exception:  # one bake's failure to start never stops the others' wake-up
                    log.exception("a woken bake could not start its round")
            event.set()
        return len(waiting)
