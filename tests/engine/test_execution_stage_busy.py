"""Two executions of one pipeline at once: the newer waits at each stage's entry (`stage_busy`)
while the older occupies it, and their hooks never interleave on a stage."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.client import Client
from workflow_helpers import RESULT_TIMEOUT, git, make_repo, write

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.client import start_execution
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore
from pipewarden.engine.worker import workers


def test_the_newer_execution_waits_while_the_older_occupies_the_stage(temporal_server: DevServer,
                                                                      tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    v1 = git(repo, "rev-parse", "HEAD")
    write(repo / "app.txt", "v2\n")
    git(repo, "commit", "-q", "-am", "v2")
    v2 = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"

    async def run(store: EngineStore) -> list[Any]:
        client = await Client.connect(temporal_server.address)
        prefix = f"test-{tmp_path.name}-"
        with ThreadPoolExecutor(max_workers=16) as executor:
            async with AsyncExitStack() as stack:
                for worker in workers(client, EngineActivities(store, state), executor=executor,
                                      task_queue_prefix=prefix):
                    await stack.enter_async_context(worker)
                _, first = await start_execution(client, store, "demo-app", str(repo), v1, queue_prefix=prefix,
                                                 poll_gates_seconds=1)
                # the second starts once the first occupies the stage
                while not any(r.status in ("deploying", "testing", "baking") for r in store.stage_runs()):
                    await asyncio.sleep(0.05)
                _, second = await start_execution(client, store, "demo-app", str(repo), v2, queue_prefix=prefix,
                                                  poll_gates_seconds=1)
                return list(await asyncio.wait_for(asyncio.gather(first.result(), second.result()),
                                                   RESULT_TIMEOUT))

    with EngineStore.for_state_dir(state) as store:
        results = asyncio.run(run(store))
        assert [r["status"] if isinstance(r, dict) else r.status for r in results] == ["succeeded", "succeeded"]
        artifacts = [next(w for w in line.split() if w in (v1[:12], v2[:12]))
                     for line in record.read_text().splitlines()]
        # every line of v1 (8 hooks and the test) before any of v2
        assert artifacts == [v1[:12]] * 9 + [v2[:12]] * 9
        busy = [(e.data["result"], e.data["code"]) for e in store.events(execution="demo-app-2")
                if e.type == "gate" and e.data["gate"] == "stage_busy"]
        assert busy == [("wait", "stage_busy"), ("pass", "ok")]
        assert store.verify() is None
