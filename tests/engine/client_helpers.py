"""Builders for the tests of `EngineClient` and the human actions: a running engine (workers of
the session's dev server) with its client, the pipeline registered in the store as the poller
would, and waiting for what the store says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client
from workflow_helpers import RESULT_TIMEOUT, git

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.client import EngineClient
from pipewarden.engine.contract import ExecutionOutcome
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.domain.events import Event
from pipewarden.engine.store import EngineStore
from pipewarden.engine.worker import HEARTBEAT_THROTTLE, workers

PIPELINE = "demo-app"


def register(store: EngineStore, repo: Path) -> None:
    """What the poller records: the pipeline's source and its newest valid definition."""
    now = datetime.now(UTC)
    store.set_pipeline_source(PIPELINE, repo=str(repo), branch="main", path="pipeline.yaml", now=now)
    document = yaml.safe_load((repo / "pipeline.yaml").read_text())
    store.set_definition(PIPELINE, document, commit=git(repo, "rev-parse", "HEAD"), team="demo", org=None, now=now)


@asynccontextmanager
async def running_engine(server: DevServer, store: EngineStore, state: Path, *, poll_gates_seconds: int = 1,
                         heartbeat_throttle: timedelta = HEARTBEAT_THROTTLE,
                         activities: EngineActivities | None = None) -> AsyncIterator[EngineClient]:
    """Workers of one engine on the dev server (task queues of their own) and its client;
    `activities` when the test needs to reach them (their bakes' wake-ups)."""
    client = await Client.connect(server.address)
    prefix = f"test-{state.parent.name}-"
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with AsyncExitStack() as stack:
            for worker in workers(client, activities or EngineActivities(store, state), executor=executor,
                                  task_queue_prefix=prefix,
                                  heartbeat_throttle=heartbeat_throttle):
                await stack.enter_async_context(worker)
            yield EngineClient(client, store, queue_prefix=prefix, poll_gates_seconds=poll_gates_seconds)


async def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def outcome(engine: EngineClient, execution: str) -> ExecutionOutcome:
    """The result of the execution's (latest) workflow run."""
    result: Any = await asyncio.wait_for(engine.temporal.get_workflow_handle(execution).result(), RESULT_TIMEOUT)
    return ExecutionOutcome(**result) if isinstance(result, dict) else result


def gate_seen(store: EngineStore, execution: str, gate: str, code: str) -> Callable[[], bool]:
    def check() -> bool:
        return any(e.type == "gate" and e.data["gate"] == gate and e.data["code"] == code
                   for e in store.events(execution=execution))
    return check


def run_status(store: EngineStore, execution: str, status: str, stage: str | None = None) -> Callable[[], bool]:
    def check() -> bool:
        return any(r.status == status and (stage is None or r.stage == stage)
                   for r in store.stage_runs(execution=execution))
    return check


def refusals(store: EngineStore) -> list[tuple[str, str | None, str]]:
    """(action, actor, reason) of every `refused` event."""
    return [(e.data["action"], e.actor, e.data["reason"]) for e in store.events(types=["refused"])]


def types(events: list[Event]) -> list[str]:
    return [event.type for event in events]


def blocking_validate(repo: Path, record: Path, block: Path, go: Path) -> None:
    """Make `validate` wait for the file `go` while the file `block` exists (and it is not a
    rollback), so a test can act while a hook runs."""
    line = ('echo "$PIPEWARDEN_STAGE $PIPEWARDEN_TARGET $PIPEWARDEN_HOST $PIPEWARDEN_HOOK $PIPEWARDEN_ARTIFACT '
            f'rollback=$PIPEWARDEN_ROLLBACK" >> {record}\n')
    (repo / "hooks" / "validate.sh").write_text(
        "#!/bin/sh\n" + line
        + f'if [ -f {block} ] && [ "$PIPEWARDEN_ROLLBACK" = 0 ]; then while [ ! -f {go} ]; do sleep 0.05; done; fi\n'
        + 'test "$(cat "$PIPEWARDEN_ARTIFACT_DIR/app.txt")" = "$(cat app.txt)"\n')


def lines_of(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


async def signalled(engine: EngineClient, execution: str, name: str) -> bool:
    """Whether the execution's workflow has received signal `name` (it is in its history)."""
    history = await engine.temporal.get_workflow_handle(execution).fetch_history()
    return any(event.HasField("workflow_execution_signaled_event_attributes")
               and event.workflow_execution_signaled_event_attributes.signal_name == name
               for event in history.events)
