"""Workflow recovery (engine/recovery.py) on the real Temporal dev server: an execution the store
holds as `running` without a workflow (the server died between the insert and the start) gets
exactly one, which runs to its end."""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import T0
from temporalio.client import Client, WorkflowExecutionStatus
from workflow_helpers import RESULT_TIMEOUT, git, make_repo, write

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.recovery import resume_missing_workflows
from pipewarden.engine.store import EngineStore
from pipewarden.engine.worker import workers


def test_a_running_execution_without_workflow_gets_one_that_runs_to_its_end(
        temporal_server: DevServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    # Workflow ids are execution ids, and the dev server is shared by the session's tests: names of
    # their own keep this test's ids apart (REJECT_DUPLICATE would refuse a demo-app-1 of another).
    tag = uuid.uuid4().hex[:8]
    demo, other, lost = f"rec-{tag}", f"rec-other-{tag}", f"rec-lost-{tag}"
    write(repo / "pipeline.yaml", (repo / "pipeline.yaml").read_text().replace("name: demo-app", f"name: {demo}"))
    git(repo, "commit", "-q", "-am", "name")
    commit = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"
    prefix = f"test-{tmp_path.name}-"

    async def run(store: EngineStore) -> dict[str, Any]:
        client = await Client.connect(temporal_server.address)
        # Two recoveries at once (two processes, say): each workflow is started exactly once.
        first, second = await asyncio.gather(
            resume_missing_workflows(client, store, queue_prefix=prefix, poll_gates_seconds=1),
            resume_missing_workflows(client, store, queue_prefix=prefix, poll_gates_seconds=1))
        # A workflow that closed while the store still says running (terminated by hand) is not
        # started again.
        await client.get_workflow_handle(f"{other}-1").terminate("by hand")
        with caplog.at_level(logging.WARNING, logger="pipewarden.engine.recovery"):
            after_terminate = await resume_missing_workflows(client, store, queue_prefix=prefix)
        with ThreadPoolExecutor(max_workers=16) as executor:
            async with AsyncExitStack() as stack:
                for worker in workers(client, EngineActivities(store, state), executor=executor,
                                      task_queue_prefix=prefix):
                    await stack.enter_async_context(worker)
                result = await asyncio.wait_for(client.get_workflow_handle(f"{demo}-1").result(), RESULT_TIMEOUT)
        described = await client.get_workflow_handle(f"{other}-1").describe()
        return {"first": first, "second": second, "after_terminate": after_terminate, "result": result,
                "other": described.status,
                "again": await resume_missing_workflows(client, store, queue_prefix=prefix)}

    with EngineStore.for_state_dir(state) as store:
        # The server died after each insert, before the workflow start.
        for name in (demo, other):
            store.set_pipeline_source(name, repo=str(repo), branch="main", path="pipeline.yaml", now=T0)
            store.create_execution(name, commit, trigger="poll", now=T0)
        store.create_execution(lost, commit, trigger="release", now=T0)  # no source: cannot be resumed
        out = asyncio.run(run(store))
        assert sorted(out["first"] + out["second"]) == sorted([f"{demo}-1", f"{other}-1"])
        assert out["after_terminate"] == []
        assert any(f"{other}-1" in r.getMessage() and "TERMINATED" in r.getMessage() for r in caplog.records)
        assert out["other"] == WorkflowExecutionStatus.TERMINATED
        result = out["result"]
        assert (result["status"] if isinstance(result, dict) else result.status) == "succeeded"
        execution = store.execution(f"{demo}-1")
        assert execution is not None and execution.status == "succeeded" and execution.artifact == commit[:12]
        assert out["again"] == []  # the rest still running in the store already have workflows (or no source)
        assert [e.id for e in store.running_executions()] == [f"{lost}-1", f"{other}-1"]  # same start: by name
        types = [e.type for e in store.events(execution=f"{demo}-1")]
        assert types[0] == "execution_started" and types.count("execution_started") == 1
        assert types[-1] == "execution_finished"
        assert len(record.read_text().splitlines()) == 9  # 8 hooks and the stage test, each once
        assert store.verify() is None
