"""Wake-ups inside one process: the bakes running here (A_BAKE, activities/engine.py) wait for
their next round on `Wakeups.wait`, and the server's alarm evaluator calls `notify` for a stage
whose alarms started or stopped firing or breaching, so that the bake judges it at once instead of
at its next poll (the time to react of issue 14). Bakes in another process (`pipewarden worker`)
are not reached and see the change at their next round, within one `poll.gates`.

Everything runs on one event loop (the server's, on which Temporal runs async activities).
"""

from __future__ import annotations

import asyncio

Stage = tuple[str, str]
"""(pipeline, stage)"""


class Wakeups:
    def __init__(self) -> None:
        self._waiting: dict[Stage, set[asyncio.Event]] = {}

    async def wait(self, stage: Stage, seconds: float) -> bool:
        """Sleep up to `seconds`; True when `notify(stage)` came first."""
        event = asyncio.Event()
        self._waiting.setdefault(stage, set()).add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))
            return True
        except TimeoutError:
            return False
        finally:
            waiting = self._waiting.get(stage)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[stage]

    def notify(self, stage: Stage) -> int:
        """Wake every bake waiting at `stage`; how many there were."""
        waiting = self._waiting.get(stage, set())
        for event in waiting:
            event.set()
        return len(waiting)
