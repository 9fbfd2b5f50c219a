"""Patch bake-rolls-back: a failed bake round's rollback runs inside the bake activity (A_BAKE),
on the real dev server. What must hold when the workflow stops waiting for that activity while
its rollback runs (a `cancel`, a `wake` that replaces the bake): the rollback runs once, to its
end, and its end is the execution's; the bake's retry under the same activity ids repeats nothing.
The rollback's validate hook waits for a file, so the test acts while it runs."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from client_helpers import lines_of, outcome, register, run_status, running_engine, wait_for
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from test_execution_release_gates import commit_v2, gated_repo
from workflow_helpers import git, write

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.client import EngineClient
from pipewarden.engine.contract import (
    A_BAKE,
    A_ROLL_BACK,
    SIGNAL_WAKE,
    BakeAnswer,
    BakeRoundRequest,
    ExecutionOutcome,
)
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore

NEGATIVE_WITH_V2 = ("{duration: 1s, deadline: 60s, datapoints: {positive: {source: command, command: 'echo 10'}, "
                    "negative: {source: command, command: 'if grep -q v2 app.txt; then echo 1; else echo 0; fi'}, "
                    "min_positive: 1, max_negative: 0}}")
"""v2's bake sees one negative datapoint at its first round: it fails and rolls back to v1."""


def slow_rollback_repo(tmp_path: Path, record: Path, go: Path) -> Path:
    """gated_repo whose validate hook, in a rollback, records itself and then waits for `go`."""
    repo = gated_repo(tmp_path, record, bake=NEGATIVE_WITH_V2)
    validate = repo / "hooks" / "validate.sh"
    write(validate, validate.read_text().replace(
        "test ", f'if [ "$PIPEWARDEN_ROLLBACK" = 1 ]; then while [ ! -f {go} ]; do sleep 0.05; done; fi\ntest ', 1),
        executable=True)
    git(repo, "commit", "-q", "-am", "the rollback's validate waits for go")
    return repo


def rollback_validates(record: Path) -> list[str]:
    return [line for line in lines_of(record) if " validate " in line and line.endswith("rollback=1")]


def scheduled(history: History) -> list[str]:
    return [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")]


async def v2_rolling_back(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> str:
    """Release v1 (succeeds), then v2; wait until v2's rollback runs its validate hook."""
    v1 = (await engine.release("demo-app", actor="dana")).id
    assert (await outcome(engine, v1)).status == "succeeded"
    commit_v2(repo)
    v2 = (await engine.release("demo-app", actor="dana")).id
    await wait_for("the rollback's validate", lambda: bool(rollback_validates(record)))
    assert run_status(store, v2, "rolling_back", "beta")()
    return v2


def assert_rolled_back_once(store: EngineStore, record: Path, result: ExecutionOutcome) -> None:
    assert result.status == "rolled_back", result
    assert result.reason is not None and "datapoints: 1 negative of at most 0" in result.reason
    validated = [line.split()[2] for line in rollback_validates(record)]
    assert sorted(validated) == ["127.0.0.1:9301", "127.0.0.1:9302"]  # each host's rollback hooks ran once
    events = store.events(execution="demo-app-2")
    assert [e.type for e in events].count("rollback_started") == 1
    assert [e.data["result"] for e in events if e.type == "rollback_finished"] == ["succeeded"]
    assert [(e.data["status"], e.data["reason"]) for e in events if e.type == "execution_finished"] == [
        ("rolled_back", result.reason)]
    assert "cancelled" not in [e.type for e in events]
    assert [r.status for r in store.stage_runs(execution="demo-app-2")] == ["rolled_back"]
    assert store.verify() is None


def test_cancel_while_the_bake_rolls_back_lets_the_rollback_end_the_execution(temporal_server: DevServer,
                                                                              tmp_path: Path) -> None:
    """`cancel` stops the workflow waiting for its bake at once; the run is `rolling_back`, so it
    is not cancelled: A_ROLL_BACK `adopt` waits for the rollback running in this process."""
    record, go = tmp_path / "record.txt", tmp_path / "go"
    repo = slow_rollback_repo(tmp_path, record, go)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        activities = EngineActivities(store, state)
        async with running_engine(temporal_server, store, state, activities=activities) as engine:
            register(store, repo)
            v2 = await v2_rolling_back(engine, store, repo, record)
            await engine.cancel(v2, actor="dana", reason="too late")
            history = engine.temporal.get_workflow_handle(v2).fetch_history
            for _ in range(200):  # the adopting activity is scheduled while the rollback still waits
                if A_ROLL_BACK in scheduled(await history()):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no A_ROLL_BACK adopted the rollback")
            assert activities.rollbacks.running(store.stage_runs(execution=v2)[-1].id) is not None
            go.touch()
            result = await outcome(engine, v2)
            assert scheduled(await history()).count(A_ROLL_BACK) == 1
        assert_rolled_back_once(store, record, result)

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))


def test_a_wake_while_the_bake_rolls_back_waits_for_the_same_rollback(temporal_server: DevServer,
                                                                       tmp_path: Path) -> None:
    """A `wake` replaces the bake activity; the new one finds the run `rolling_back` by the old
    one, in this process, and answers that rollback's end: no A_ROLL_BACK, hooks run once."""
    record, go = tmp_path / "record.txt", tmp_path / "go"
    repo = slow_rollback_repo(tmp_path, record, go)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            v2 = await v2_rolling_back(engine, store, repo, record)
            handle = engine.temporal.get_workflow_handle(v2)
            await handle.signal(SIGNAL_WAKE)
            for _ in range(200):  # the replacing bake is scheduled while the rollback still waits
                if scheduled(await handle.fetch_history()).count(A_BAKE) == 2:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the wake did not replace the bake")
            go.touch()
            result = await outcome(engine, v2)
            names = scheduled(await handle.fetch_history())
            assert A_ROLL_BACK not in names and names.count(A_BAKE) == 2, names
        assert_rolled_back_once(store, record, result)

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))


def test_a_retried_bake_that_rolled_back_repeats_nothing(temporal_server: DevServer, tmp_path: Path) -> None:
    """Run again under the ids of the bake activity that rolled back (as Temporal retries one whose
    completion was lost): the run found `rolling_back` by this activity's own earlier attempt is
    carried on with the same keys (no hook runs again, no event is written twice) and answers the
    same end; found ended, the end is read from the store."""
    record, go = tmp_path / "record.txt", tmp_path / "go"
    go.touch()
    repo = slow_rollback_repo(tmp_path, record, go)
    state = tmp_path / "state"

    async def bake_request() -> tuple[str, str, BakeRoundRequest]:
        client = await Client.connect(temporal_server.address)
        history = await client.get_workflow_handle("demo-app-2").fetch_history()
        bakes = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name == A_BAKE]
        attributes = bakes[-1].activity_task_scheduled_event_attributes
        (payload,) = await client.data_converter.decode(attributes.input.payloads, [BakeRoundRequest])
        return history.run_id, attributes.activity_id, payload

    async def released(store: EngineStore) -> ExecutionOutcome:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            v1 = (await engine.release("demo-app", actor="dana")).id
            assert (await outcome(engine, v1)).status == "succeeded"
            commit_v2(repo)
            return await outcome(engine, (await engine.release("demo-app", actor="dana")).id)

    with EngineStore.for_state_dir(state) as store:
        result = asyncio.run(released(store))
        assert_rolled_back_once(store, record, result)
        run_id, activity_id, request = asyncio.run(bake_request())
        assert request.rolls_back
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id="demo-app-2", workflow_run_id=run_id,
                                       activity_id=activity_id, attempt=2)
        lines_before, events_before = record.read_text(), len(store.events())
        stage_run = store.stage_runs(execution="demo-app-2")[-1]

        # ended: the store says how
        answer: BakeAnswer = asyncio.run(env.run(EngineActivities(store, state).bake_stage, request))
        assert (answer.decided, answer.finished) == (True, result)

        # cut off mid-rollback (its process died): the run left `rolling_back` for a retry to carry on
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE stage_runs SET status = 'rolling_back', finished = NULL WHERE id = ?",
                                 (stage_run.id,))
        answer = asyncio.run(env.run(EngineActivities(store, state).bake_stage, request))
        assert (answer.decided, answer.finished) == (True, result)
        assert record.read_text() == lines_before
        assert len(store.events()) == events_before
        assert store.stage_runs(execution="demo-app-2")[-1].status == "rolled_back"
        assert store.verify() is None
