"""The hook activity on its own (Temporal's ActivityEnvironment, real git, real processes): a
completed hook run is never run again when its activity is retried; an attempt a crash cut off is
recorded `interrupted`, its leftover process group killed, and the hook runs as attempt 2."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment
from workflow_helpers import packed_repo

from pipewarden.engine.activities import engine as engine_activities
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.contract import HookRequest, RolledBackRequest
from pipewarden.engine.store import EngineStore

HOST = "127.0.0.1:9301"


def _request(repo: Path, commit: str, execution: str) -> HookRequest:
    return HookRequest(execution, "demo-app", str(repo), commit[:12], commit, "beta", "beta-cell", HOST, [HOST],
                       "start", "./hooks/hook.sh", 30, False, False, True, True)


def _environment(activity_id: str, attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="demo-app-1", activity_id=activity_id, attempt=attempt)
    return env


def test_a_retried_hook_activity_does_not_run_a_completed_hook_again(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        activities = EngineActivities(store, state)
        first = _environment("7", 1).run(activities.run_hook, _request(repo, commit, "demo-app-1"))
        again = _environment("7", 2).run(activities.run_hook, _request(repo, commit, "demo-app-1"))
        assert first.ok and again.ok and first.log == again.log
        assert len(record.read_text().splitlines()) == 1
        assert [e.data["attempt"] for e in store.events(types=["hook"])] == [1]
        assert store.host_lease(HOST) is None  # given back
        assert store.verify() is None


def test_an_attempt_cut_off_is_recorded_interrupted_and_its_group_killed(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        # attempt 1 started, left a process group behind, and its worker died
        leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
        try:
            key = f"demo-app-1/{_environment('7', 1).info.workflow_run_id}/7/hook"
            started = store.begin_hook_run(key, execution="demo-app-1", pipeline="demo-app", stage="beta",
                                           target="beta-cell", host=HOST, hook="start", artifact=commit[:12],
                                           now=datetime.now(UTC))
            store.set_hook_pgid(key, started.run.attempt, leftover.pid)
            answer = _environment("7", 2).run(EngineActivities(store, state).run_hook,
                                              _request(repo, commit, "demo-app-1"))
            assert answer.ok
            deadline = time.monotonic() + 5
            while leftover.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert leftover.returncode == -signal.SIGKILL
        finally:
            if leftover.poll() is None:
                os.killpg(leftover.pid, signal.SIGKILL)
                leftover.wait()
        hooks = [(e.data["attempt"], e.data["interrupted"], e.data["exit_code"]) for e in store.events(types=["hook"])]
        assert hooks == [(1, True, None), (2, False, 0)]
        assert len(record.read_text().splitlines()) == 1
        assert store.verify() is None


def test_a_long_hook_heartbeats_from_the_helper_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, state, commit, _ = packed_repo(tmp_path)
    monkeypatch.setattr(engine_activities, "HEARTBEAT_SECONDS", 0.1)
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        env = _environment("9", 1)
        beats: list[tuple[object, ...]] = []
        env.on_heartbeat = lambda *details: beats.append(details)
        request = dataclasses.replace(_request(repo, commit, "demo-app-1"), command="sleep 1; ./hooks/hook.sh")
        assert env.run(EngineActivities(store, state).run_hook, request).ok
        assert len(beats) >= 5


def test_recording_a_rollback_twice_writes_it_once(tmp_path: Path) -> None:
    with EngineStore.for_state_dir(tmp_path) as store:
        activities = EngineActivities(store, tmp_path)
        request = RolledBackRequest("demo-app", "beta", "beta-cell", "0123456789ab", "2026-12-01T15:00:00.000Z")
        _environment("4", 1).run(activities.record_rolled_back, request)
        _environment("4", 2).run(activities.record_rolled_back, request)
        assert len(store.target_history("demo-app", "beta")) == 1
