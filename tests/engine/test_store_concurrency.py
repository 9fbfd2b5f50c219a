"""Several processes appending to one SQLite store at once keep `seq` gap-free and the chain valid.

The processes also create the store at once (a new file). Without BEGIN IMMEDIATE the writers
that read the head before another one wrote fail with "database is locked" (checked by hand: 47 of
136 events landed); with it, every append waits its turn.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from store_worker import append_many

from pipewarden.engine.store import EngineStore, default_url

WORKERS = 4
EACH = 40


def test_processes_append_concurrently(tmp_path: Path) -> None:
    url = default_url(tmp_path / "state")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    processes = [context.Process(target=append_many, args=(url, w, EACH, barrier)) for w in range(WORKERS)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    # A lost write lock shows here: a writer that met "database is locked" died with its error.
    assert [process.exitcode for process in processes] == [0] * WORKERS
    with EngineStore(url) as store:
        events = store.events()
        shared = EACH // 5
        executions = WORKERS * (EACH // 10)
        assert len(events) == WORKERS * (EACH - shared) + shared + executions
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert store.head().seq == len(events)
        assert store.verify() is None
        assert len({e.data["reason"] for e in events if e.type == "paused"}) == WORKERS * (EACH - shared) + shared
        numbers = sorted(int(e.id.rsplit("-", 1)[1]) for e in store.executions(limit=1000))
        assert numbers == list(range(1, executions + 1))
