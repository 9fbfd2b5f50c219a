"""A bake on synthetic datapoints through a whole execution (issue 14; what the release demo's
canary does): the server's synthetics runner sends the pipeline's synthetic every second to the
stage's hosts, two real loopback cells; the bake counts successes and failures since the deploy
finished. v1 bakes on the cells answering 200; the cells then answer 500, and v2's first failures
fail its bake (`max_negative: 0`) and roll it back (trigger `datapoints`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from client_helpers import PIPELINE, outcome, register, running_engine
from test_execution_release_gates import commit_v2, gate_events
from test_synthetics import Cell
from workflow_helpers import git, make_repo, write

from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore
from pipewarden.engine.synthetics import StoredPipelines, SyntheticsRunner

SYNTHETICS = """synthetics:
  - name: home
    interval: 1s
    requests:
      - {method: GET, path: /, expect_status: 200}
"""
BAKE = ("bake: {duration: 1s, datapoints: {positive: {source: synthetic, name: home, signal: success}, "
        "negative: {source: synthetic, name: home, signal: failure}, min_positive: 4, max_negative: 0}}")


def test_a_bake_on_synthetic_datapoints_passes_then_rolls_back_on_a_failure(temporal_server: DevServer,
                                                                            tmp_path: Path) -> None:
    cells = [Cell(200), Cell(200)]
    try:
        record = tmp_path / "record.txt"
        repo = make_repo(tmp_path, record, stages=1)
        text = (repo / "pipeline.yaml").read_text().replace("stages:\n", SYNTHETICS + "stages:\n", 1)
        text = text.replace("bake: {duration: 1s}", BAKE, 1)
        text = text.replace("127.0.0.1:9301", cells[0].host).replace("127.0.0.1:9302", cells[1].host)
        write(repo / "pipeline.yaml", text)
        git(repo, "commit", "-q", "-am", "bake on synthetics")
        state = tmp_path / "state"

        async def scenario(store: EngineStore) -> None:
            register(store, repo)
            stop = asyncio.Event()
            runner = SyntheticsRunner(store, StoredPipelines(store, [PIPELINE]), clock=lambda: datetime.now(UTC))
            task = asyncio.create_task(runner.run(stop))
            try:
                async with running_engine(temporal_server, store, state) as engine:
                    v1 = (await engine.release(PIPELINE, actor="dana")).id
                    assert (await outcome(engine, v1)).status == "succeeded"
                    for cell in cells:
                        cell.status = 500
                    commit_v2(repo)
                    register(store, repo)
                    v2 = (await engine.release(PIPELINE, actor="dana")).id
                    result = await outcome(engine, v2)
                    assert result.status == "rolled_back", result
                    assert result.reason is not None and "negative of at most 0" in result.reason
            finally:
                stop.set()
                await task

        with EngineStore.for_state_dir(state) as store:
            asyncio.run(scenario(store))
            assert gate_events(store, "demo-app-1", "datapoints")[-1] == ("pass", "ok")
            assert gate_events(store, "demo-app-2", "datapoints")[-1] == ("fail", "negative_datapoints")
            failed = [e for e in store.events(execution="demo-app-2") if e.type == "gate"
                      and e.data["gate"] == "datapoints"][-1]
            assert failed.data["inputs"]["negative"]["source"] == "synthetic"
            started = next(e for e in store.events(execution="demo-app-2") if e.type == "rollback_started")
            assert started.data["trigger"] == "datapoints"
            assert store.verify() is None
    finally:
        for cell in cells:
            cell.close()
