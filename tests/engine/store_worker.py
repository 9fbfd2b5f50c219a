"""Work done in separate processes by test_store_concurrency.py (imported by name under spawn)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipewarden.engine.domain.events import draft
from pipewarden.engine.store import EngineStore


def append_many(url: str, worker: int, count: int, barrier: Any) -> None:
    """Open the store (maybe creating it alongside the others), wait for every worker, then append
    `count` events; every fifth one uses a key shared by all workers (only one of them may land),
    and every worker also creates executions of one pipeline."""
    store = EngineStore(url)
    barrier.wait(timeout=60)  # a worker that died opening the store fails the others, never hangs them
    for i in range(count):
        now = datetime.now(UTC)
        key = f"shared-{i}" if i % 5 == 0 else f"w{worker}-{i}"
        store.append_event(draft("paused", time=now, actor=f"w{worker}", pipeline="shop",
                                 data={"reason": f"{worker}/{i}"}), key=key)
        if i % 10 == 0:
            store.create_execution("shop", f"{worker:02d}{i:02d}" + "a" * 36, trigger="release", now=now)
    store.close()
