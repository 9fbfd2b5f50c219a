"""Automatic rollback triggered by a failed stage test, and a failed first release with no last
good artifact to return to (real dev server, real git, recording hooks)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from workflow_helpers import git, make_repo, release, write

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.contract import A_ROLL_BACK, StageRollbackAnswer, StageRollbackRequest
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore

HOSTS = ["127.0.0.1:9301", "127.0.0.1:9302"]


def lines(stage: str, target: str, hosts: list[str], artifact: str, rollback: int = 0) -> list[str]:
    return [f"{stage} {target} {host} {hook} {artifact} rollback={rollback}"
            for host in hosts for hook in ("stop", "install", "start", "validate")]


def released_then_rolled_back(server: DevServer, store: EngineStore, tmp_path: Path) -> tuple[Path, str, str]:
    """v1 released, then v2 whose smoke test fails and which is rolled back to v1: (the hooks'
    record file, v1, v2)."""
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    v1 = git(repo, "rev-parse", "HEAD")
    write(repo / "app.txt", "v2\n")
    write(repo / "hooks" / "test.sh", (repo / "hooks" / "test.sh").read_text() + "exit 1\n", executable=True)
    git(repo, "commit", "-q", "-am", "v2: the smoke test fails")
    v2 = git(repo, "rev-parse", "HEAD")
    first, second = asyncio.run(release(server, store, tmp_path / "state", repo, [v1, v2]))
    assert (first.status, second.status) == ("succeeded", "rolled_back"), (first, second)
    return record, v1, v2


def test_a_failed_stage_test_rolls_every_touched_host_back(temporal_server: DevServer, tmp_path: Path) -> None:
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        record, v1, v2 = released_then_rolled_back(temporal_server, store, tmp_path)
        assert record.read_text().splitlines() == [
            *lines("beta", "beta-cell", HOSTS, v1[:12]),
            f"beta test smoke {v1[:12]} hosts={' '.join(HOSTS)}",
            *lines("beta", "beta-cell", HOSTS, v2[:12]),
            f"beta test smoke {v2[:12]} hosts={' '.join(HOSTS)}",
            *lines("beta", "beta-cell", HOSTS, v1[:12], rollback=1),
        ]
        events = store.events(execution="demo-app-2")
        tests = next(e for e in events if e.type == "tests_finished")
        assert tests.data == {"result": "failed", "failed": ["smoke"]}
        started = next(e for e in events if e.type == "rollback_started")
        assert started.data == {"trigger": "tests", "to": {"beta-cell": v1[:12]}}
        assert {h.host: (h.artifact, h.state) for h in store.hosts("demo-app").values()} == {
            host: (v1[:12], "ok") for host in HOSTS}
        assert store.verify() is None


def test_a_first_release_that_fails_has_nothing_to_roll_back_to(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    write(repo / "hooks" / "validate.sh", (repo / "hooks" / "validate.sh").read_text() + "exit 1\n", executable=True)
    git(repo, "commit", "-q", "-am", "validate fails from the start")
    commit = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        (outcome,) = asyncio.run(release(temporal_server, store, state, repo, [commit]))
        assert outcome.status == "failed", outcome
        assert record.read_text().splitlines() == lines("beta", "beta-cell", HOSTS[:1], commit[:12])
        events = store.events(execution="demo-app-1")
        started = next(e for e in events if e.type == "rollback_started")
        assert started.data == {"trigger": "hook", "to": {"beta-cell": None}}
        finished = next(e for e in events if e.type == "rollback_finished")
        assert finished.data["result"] == "failed"
        assert [r.status for r in store.stage_runs(execution="demo-app-1")] == ["failed"]
        host = store.hosts("demo-app")
        assert {h.host: (h.artifact, h.state) for h in host.values()} == {HOSTS[0]: (None, "failed")}
        assert store.verify() is None


def test_with_rollback_manual_a_failed_hook_fails_the_stage_and_nothing_is_rolled_back(
        temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    v1 = git(repo, "rev-parse", "HEAD")
    text = (repo / "pipeline.yaml").read_text().replace("rollback: automatic", "rollback: manual")
    write(repo / "pipeline.yaml", text)
    write(repo / "hooks" / "validate.sh", (repo / "hooks" / "validate.sh").read_text() + "exit 1\n", executable=True)
    git(repo, "commit", "-q", "-am", "v2: validate fails, rollback manual")
    v2 = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        first, second = asyncio.run(release(temporal_server, store, state, repo, [v1, v2]))
        assert (first.status, second.status) == ("succeeded", "failed"), (first, second)
        assert (second.reason or "").startswith(f"beta: hook validate on {HOSTS[0]} exited 1 (output in logs/")
        assert record.read_text().splitlines()[9:] == lines("beta", "beta-cell", HOSTS[:1], v2[:12])
        types = [e.type for e in store.events(execution="demo-app-2")]
        assert "rollback_started" not in types and types[-1] == "execution_finished"
        run = store.stage_runs(execution="demo-app-2")[0]
        assert run.status == "failed"
        assert (run.reason or "").startswith(f"hook validate on {HOSTS[0]} exited 1 (output in logs/")
        hosts = {h.host: (h.artifact, h.state) for h in store.hosts("demo-app").values()}
        assert hosts == {HOSTS[0]: (v1[:12], "failed"), HOSTS[1]: (v1[:12], "ok")}
        assert store.verify() is None


def test_a_retried_rollback_activity_repeats_nothing(temporal_server: DevServer, tmp_path: Path) -> None:
    """The automatic rollback is one activity (A_ROLL_BACK). Run again under the ids of the attempt
    that completed (as Temporal retries one whose completion was lost), it runs no hook again,
    writes no event and ends the run the same way, with the same answer."""
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        record, v1, _ = released_then_rolled_back(temporal_server, store, tmp_path)

        async def scheduled() -> tuple[str, str, StageRollbackRequest]:
            client = await Client.connect(temporal_server.address)
            history = await client.get_workflow_handle("demo-app-2").fetch_history()
            for event in history.events:
                attributes = event.activity_task_scheduled_event_attributes
                if event.HasField("activity_task_scheduled_event_attributes") and \
                        attributes.activity_type.name == A_ROLL_BACK:
                    (payload,) = await client.data_converter.decode(attributes.input.payloads,
                                                                    [StageRollbackRequest])
                    return history.run_id, attributes.activity_id, payload
            raise AssertionError("no roll_back_stage activity in the history")

        run_id, activity_id, request = asyncio.run(scheduled())
        lines_before, events_before = record.read_text(), len(store.events())
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id="demo-app-2", workflow_run_id=run_id,
                                       activity_id=activity_id, attempt=2)
        answer = env.run(EngineActivities(store, state).roll_back_stage, request)
        assert answer == StageRollbackAnswer("rolled_back", f"beta-cell -> {v1[:12]}")
        assert record.read_text() == lines_before
        assert len(store.events()) == events_before
        assert store.stage_runs(execution="demo-app-2")[-1].status == "rolled_back"
        assert store.verify() is None

