"""Issue 14's gates in the workflow, on the real dev server: the window at the entry (waiting with
the right `until`, then `override window`), alarms at the entry and as the bake's tripwire (the
server's evaluator over `source: command` alarms), and the bake's datapoints (`insufficient_data`
until enough good traffic; one negative with `max_negative: 0` rolls back). Metric commands read
files the test writes: cheap and exact (the Prometheus source has its own tests with the real
server, test_sources.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from client_helpers import (
    PIPELINE,
    blocking_validate,
    gate_seen,
    lines_of,
    outcome,
    register,
    run_status,
    running_engine,
    wait_for,
)
from workflow_helpers import git, make_repo, write

from pipewarden.engine.activities.engine import EngineActivities, engine_sources
from pipewarden.engine.alarms import AlarmEvaluator
from pipewarden.engine.client import EngineClient
from pipewarden.engine.contract import A_BAKE, A_ROLL_BACK
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.domain.ids import format_time, parse_time
from pipewarden.engine.server import wake_stage
from pipewarden.engine.store import EngineStore
from pipewarden.engine.wakeups import Wakeups


def gated_repo(tmp_path: Path, record: Path, *, top: str = "", bake: str = "{duration: 1s}",
               stage: str = "") -> Path:
    """make_repo's one-stage pipeline (beta) with `top` before `stages:`, beta's `bake:` and
    `stage` lines added to beta."""
    repo = make_repo(tmp_path, record, stages=1)
    text = (repo / "pipeline.yaml").read_text()
    text = text.replace("stages:\n", top + "stages:\n", 1).replace("bake: {duration: 1s}", f"bake: {bake}", 1)
    write(repo / "pipeline.yaml", text + stage)
    git(repo, "commit", "-q", "-am", "gates")
    return repo


def commit_v2(repo: Path, *, bake: str | None = None) -> None:
    write(repo / "app.txt", "v2\n")
    if bake is not None:
        text = (repo / "pipeline.yaml").read_text()
        write(repo / "pipeline.yaml", text.replace("bake: {duration: 1s}", f"bake: {bake}", 1))
    git(repo, "commit", "-q", "-am", "v2")


@asynccontextmanager
async def alarm_evaluator(store: EngineStore, engine: EngineClient | None = None,
                          local: Wakeups | None = None) -> AsyncIterator[None]:
    """The server's alarm evaluator, every second, as `pipewarden server` runs it (waking the
    stage's executions through `engine`'s Temporal when given, and the bakes of `local`)."""
    stop = asyncio.Event()
    notify = None if engine is None else wake_stage(store, engine.temporal, local)
    evaluator = AlarmEvaluator(store, engine_sources(store, None), None, poll_seconds=1, notify=notify)
    task = asyncio.create_task(evaluator.run(stop, lambda: datetime.now(UTC)))
    try:
        yield
    finally:
        stop.set()
        await task


def gate_events(store: EngineStore, execution: str, gate: str) -> list[tuple[str, str]]:
    return [(e.data["result"], e.data["code"]) for e in store.events(execution=execution)
            if e.type == "gate" and e.data["gate"] == gate]


def test_a_closed_window_waits_until_it_opens_then_override_window_lets_it_pass(temporal_server: DevServer,
                                                                                  tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    opens = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    closes = opens + timedelta(minutes=30)
    top = (f'windows:\n  soon:\n    timezone: UTC\n    days: [mon, tue, wed, thu, fri, sat, sun]\n'
           f'    start: "{opens:%H:%M}"\n    end: "{closes:%H:%M}"\n')
    repo = gated_repo(tmp_path, record, top=top, stage="    window: soon\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the window to wait", gate_seen(store, execution, "window", "window_closed"))
            waited = next(e for e in store.events(execution=execution) if e.type == "gate"
                          and e.data["gate"] == "window")
            assert waited.data["until"] == format_time(opens)
            assert not record.exists()
            await engine.override(PIPELINE, "beta", "window", actor="dana", reason="hotfix")
            assert (await outcome(engine, execution)).status == "succeeded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        assert gate_events(store, "demo-app-1", "window") == [("wait", "window_closed"), ("pass", "ok")]
        passed = [e for e in store.events(execution="demo-app-1") if e.type == "gate"
                  and e.data["gate"] == "window"][-1]
        assert passed.data["inputs"]["overridden"]["code"] == "window_closed"
        assert parse_time(passed.time) < opens  # it did not wait for the window
        assert store.verify() is None


def test_a_firing_alarm_holds_a_stage_at_its_entry(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    errors = tmp_path / "errors.txt"
    errors.write_text("7\n")
    top = f"alarms:\n  errors:\n    metric: {{source: command, command: 'cat {errors}'}}\n    threshold: 0\n" \
          "    comparison: '>'\n"
    repo = gated_repo(tmp_path, record, top=top, stage="    alarms: [errors]\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine, alarm_evaluator(store):
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("the alarm to hold the entry", gate_seen(store, execution, "alarms", "alarm_firing"))
            await asyncio.sleep(1.5)
            assert not record.exists()  # nothing deployed while it fires
            errors.write_text("0\n")
            assert (await outcome(engine, execution)).status == "succeeded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        assert gate_events(store, "demo-app-1", "alarms")[-1] == ("pass", "ok")
        assert ("wait", "alarm_firing") in gate_events(store, "demo-app-1", "alarms")
        assert store.verify() is None


def test_a_canary_waits_for_enough_good_datapoints_then_passes(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    good = tmp_path / "good.txt"
    good.write_text("2\n")
    bake = (f"{{duration: 1s, datapoints: {{positive: {{source: command, command: 'cat {good}'}}, "
            "negative: {source: command, command: 'echo 0'}, min_positive: 5, max_negative: 0}}")
    repo = gated_repo(tmp_path, record, bake=bake)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("insufficient data", gate_seen(store, execution, "datapoints", "insufficient_data"))
            await asyncio.sleep(2)
            assert run_status(store, execution, "baking", "beta")()  # still baking after bake.duration
            good.write_text("5\n")
            assert (await outcome(engine, execution)).status == "succeeded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        events = store.events(execution="demo-app-1")
        waited = next(e for e in events if e.type == "gate" and e.data["code"] == "insufficient_data")
        assert waited.data["reason"] == "2 positive of 5, 0 negative of at most 0: 3 more positive needed"
        assert waited.data["inputs"]["positive"]["query"] == f"cat {good}"
        assert gate_events(store, "demo-app-1", "datapoints")[-1] == ("pass", "ok")
        assert store.verify() is None


def test_a_single_negative_datapoint_fails_the_bake_and_rolls_back(temporal_server: DevServer,
                                                                   tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    # v2 counts one bad request (the command runs in the artifact's checkout)
    bake = ("{duration: 1s, datapoints: {positive: {source: command, command: 'echo 10'}, negative: "
            "{source: command, command: 'if grep -q v2 app.txt; then echo 1; else echo 0; fi'}, "
            "min_positive: 1, max_negative: 0}}")
    repo = gated_repo(tmp_path, record, bake=bake.replace("{duration: 1s,", "{duration: 1s, deadline: 60s,"))
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            v1 = (await engine.release(PIPELINE, actor="dana")).id
            assert (await outcome(engine, v1)).status == "succeeded"
            commit_v2(repo)
            v2 = (await engine.release(PIPELINE, actor="dana")).id
            result = await outcome(engine, v2)
            assert result.status == "rolled_back", result
            assert result.reason is not None and "datapoints: 1 negative of at most 0" in result.reason
            # the bake activity rolled back itself and ended the execution (patch bake-rolls-back):
            # no A_ROLL_BACK, no set_execution_status after it
            history = await engine.temporal.get_workflow_handle(v2).fetch_history()
            scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                         if e.HasField("activity_task_scheduled_event_attributes")]
            assert scheduled[-1] == A_BAKE and A_ROLL_BACK not in scheduled, scheduled
            record = store.execution(v2)
            assert record is not None and (record.status, record.reason) == (result.status, result.reason)

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        events = store.events(execution="demo-app-2")
        ended = store.execution("demo-app-2")
        assert ended is not None
        assert [(e.data["status"], e.data["reason"]) for e in events if e.type == "execution_finished"] == [
            ("rolled_back", ended.reason)]
        assert events[-1].type == "execution_finished"
        assert gate_events(store, "demo-app-2", "datapoints") == [("fail", "negative_datapoints")]
        started = next(e for e in events if e.type == "rollback_started")
        assert started.data["trigger"] == "datapoints"
        assert started.data["to"] == {"beta-cell": git(repo, "rev-parse", "HEAD~1")[:12]}
        failed = next(e for e in events if e.type == "gate" and e.data["code"] == "negative_datapoints")
        finished = next(e for e in events if e.type == "rollback_finished")
        assert finished.data["result"] == "succeeded"
        # the time to roll back counts from the round that observed the negative
        observed = parse_time(failed.data["inputs"]["now"])
        assert finished.data["duration_ms"] >= (parse_time(finished.time) - observed).total_seconds() * 1000 - 1
        assert store.verify() is None


def test_an_alarm_firing_mid_bake_rolls_back(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    errors = tmp_path / "errors.txt"
    errors.write_text("0\n")
    top = f"alarms:\n  errors:\n    metric: {{source: command, command: 'cat {errors}'}}\n    threshold: 0\n" \
          "    comparison: '>'\n    periods: 3\n"
    repo = gated_repo(tmp_path, record, top=top, stage="    alarms: [errors]\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine, alarm_evaluator(store, engine):
            register(store, repo)
            v1 = (await engine.release(PIPELINE, actor="dana")).id
            assert (await outcome(engine, v1)).status == "succeeded"
            commit_v2(repo, bake="{duration: 60s}")
            register(store, repo)
            v2 = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("v2 baking", run_status(store, v2, "baking", "beta"))
            errors.write_text("3\n")
            result = await outcome(engine, v2)
            assert result.status == "rolled_back", result
            assert result.reason is not None and "alarms: alarm errors is firing" in result.reason

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        events = store.events(execution="demo-app-2")
        alarms = gate_events(store, "demo-app-2", "alarms")
        assert alarms[0] == ("pass", "ok") and alarms[-1] == ("fail", "alarm_firing")
        assert ("wait", "alarm_breaching") in alarms  # the breaches short of periods held the bake
        started = next(e for e in events if e.type == "rollback_started")
        assert started.data["trigger"] == "alarm"
        bake = next(e for e in events if e.type == "bake_finished")
        assert bake.data["result"] == "failed"
        assert store.verify() is None


def test_override_datapoints_passes_a_waiting_bake_and_a_deadline_fails_one(temporal_server: DevServer,
                                                                             tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    bake = ("{duration: 1s, deadline: 3s, datapoints: {positive: {source: command, command: 'echo 1'}, "
            "min_positive: 5}}")
    repo = gated_repo(tmp_path, record, bake=bake)
    text = (repo / "pipeline.yaml").read_text().replace("rollback: automatic", "rollback: manual")
    write(repo / "pipeline.yaml", text)
    git(repo, "commit", "-q", "-am", "manual rollback")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            first = (await engine.release(PIPELINE, actor="dana")).id
            result = await outcome(engine, first)
            assert result.status == "failed", result
            assert result.reason is not None and "bake_time: the bake still waits at its deadline of 3s" in result.reason
            assert "datapoints: 1 positive of 5" in result.reason
            await engine.override(PIPELINE, "beta", "datapoints", actor="dana", reason="known low traffic")
            second = (await engine.release(PIPELINE, actor="dana")).id
            assert (await outcome(engine, second)).status == "succeeded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        assert gate_events(store, "demo-app-1", "bake_time")[-1] == ("fail", "deadline")
        assert not store.events(execution="demo-app-1", types=["rollback_started"])  # rollback: manual
        assert gate_events(store, "demo-app-2", "datapoints") == [("pass", "ok")]
        passed = next(e for e in store.events(execution="demo-app-2") if e.type == "gate"
                      and e.data["gate"] == "datapoints")
        assert passed.data["inputs"]["overridden"]["code"] == "insufficient_data"
        assert store.verify() is None


def test_an_alarm_firing_during_the_deploy_stops_it_and_rolls_back(temporal_server: DevServer,
                                                                    tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    errors, block, go = tmp_path / "errors.txt", tmp_path / "block", tmp_path / "go"
    errors.write_text("0\n")
    top = f"alarms:\n  errors:\n    metric: {{source: command, command: 'cat {errors}'}}\n    threshold: 0\n" \
          "    comparison: '>'\n"
    repo = gated_repo(tmp_path, record, top=top, stage="    alarms: [errors]\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine, alarm_evaluator(store):
            register(store, repo)
            v1 = (await engine.release(PIPELINE, actor="dana")).id
            assert (await outcome(engine, v1)).status == "succeeded"
            blocking_validate(repo, record, block, go)
            commit_v2(repo)
            register(store, repo)
            block.touch()
            v2 = (await engine.release(PIPELINE, actor="dana")).id
            artifact = git(repo, "rev-parse", "HEAD")[:12]
            await wait_for("v2's first validate", lambda: any(f"validate {artifact} rollback=0" in line
                                                                for line in lines_of(record)))
            errors.write_text("1\n")
            await wait_for("the tripwire", lambda: ("fail", "alarm_firing") in gate_events(store, v2, "alarms"))
            go.touch()
            result = await outcome(engine, v2)
            assert result.status == "rolled_back", result

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        events = store.events(execution="demo-app-2")
        assert next(e for e in events if e.type == "rollback_started").data["trigger"] == "alarm"
        # the first batch's host only: no new batch after the tripwire
        hosts = {e.host for e in events if e.type == "hook" and e.data["hook"] == "stop"}
        assert len(hosts) == 1
        assert not [e for e in events if e.type == "bake_started"]
        assert store.verify() is None


def test_override_alarms_silences_the_tripwire(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    errors = tmp_path / "errors.txt"
    errors.write_text("0\n")
    top = f"alarms:\n  errors:\n    metric: {{source: command, command: 'cat {errors}'}}\n    threshold: 0\n" \
          "    comparison: '>'\n"
    repo = gated_repo(tmp_path, record, top=top, bake="{duration: 5s}", stage="    alarms: [errors]\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine, alarm_evaluator(store):
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("baking", run_status(store, execution, "baking", "beta"))
            await engine.override(PIPELINE, "beta", "alarms", actor="dana", reason="noisy alarm")
            errors.write_text("5\n")
            await wait_for("the alarm to fire", lambda: any(
                state.firing for state, _ in store.alarm_states(PIPELINE, "beta").values()))
            assert (await outcome(engine, execution)).status == "succeeded"

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        finished = next(e for e in store.events(execution="demo-app-1") if e.type == "bake_finished")
        assert finished.data["result"] == "succeeded"
        assert "overridden by dana" in finished.data["reason"] and "is firing" in finished.data["reason"]
        assert store.verify() is None


def test_an_alarm_firing_during_the_stage_tests_cuts_them_short_and_rolls_back(temporal_server: DevServer,
                                                                                tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    errors, go = tmp_path / "errors.txt", tmp_path / "go"
    errors.write_text("0\n")
    top = f"alarms:\n  errors:\n    metric: {{source: command, command: 'cat {errors}'}}\n    threshold: 0\n" \
          "    comparison: '>'\n"
    repo = gated_repo(tmp_path, record, top=top, stage="    alarms: [errors]\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine, alarm_evaluator(store):
            register(store, repo)
            v1 = (await engine.release(PIPELINE, actor="dana")).id
            assert (await outcome(engine, v1)).status == "succeeded"
            # v2's smoke test hangs until `go` (never written): only the tripwire can end it
            write(repo / "hooks" / "test.sh", f"#!/bin/sh\nwhile [ ! -f {go} ]; do sleep 0.05; done\n",
                  executable=True)
            commit_v2(repo)
            register(store, repo)
            v2 = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("v2 testing", run_status(store, v2, "testing", "beta"))
            errors.write_text("2\n")
            result = await outcome(engine, v2)
            assert result.status == "rolled_back", result

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        events = store.events(execution="demo-app-2")
        assert [e.data["result"] for e in events if e.type == "tests_finished"] == ["cancelled"]
        assert next(e for e in events if e.type == "rollback_started").data["trigger"] == "alarm"
        assert ("fail", "alarm_firing") in gate_events(store, "demo-app-2", "alarms")
        assert store.verify() is None


@pytest.mark.parametrize("in_process", [False, True], ids=["bake elsewhere: a signal", "bake in process: wake-up"])
def test_the_evaluator_wakes_a_baking_stage_whose_alarm_fires(temporal_server: DevServer, tmp_path: Path,
                                                              in_process: bool) -> None:
    """With poll.gates 30 s in the workflow, only the evaluator's wake-up (every second here) makes
    the bake judge the alarm at once: the time to react does not wait for a poll. A bake running in
    the evaluator's process (as in `pipewarden server`) is woken directly (engine/wakeups.py) and
    its workflow gets no signal; one elsewhere (a `pipewarden worker`) through a `wake` signal, on
    which the workflow replaces its bake activity with one that judges at once."""
    record = tmp_path / "record.txt"
    errors = tmp_path / "errors.txt"
    errors.write_text("0\n")
    top = f"alarms:\n  errors:\n    metric: {{source: command, command: 'cat {errors}'}}\n    threshold: 0\n" \
          "    comparison: '>'\n"
    repo = gated_repo(tmp_path, record, top=top, bake="{duration: 60s}", stage="    alarms: [errors]\n")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        activities = EngineActivities(store, state)
        async with running_engine(temporal_server, store, state, poll_gates_seconds=30,
                                  activities=activities) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            async with alarm_evaluator(store, engine, activities.wakeups if in_process else None):
                await wait_for("baking", run_status(store, execution, "baking", "beta"), timeout=40)
                await asyncio.sleep(1)
                errors.write_text("1\n")
                result = await asyncio.wait_for(outcome(engine, execution), 15)
            assert result.status in ("rolled_back", "failed"), result  # no last good artifact to restore
            history = await engine.temporal.get_workflow_handle(execution).fetch_history()
            signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
            bakes = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                     and e.activity_task_scheduled_event_attributes.activity_type.name == "bake_stage"]
            if in_process:
                assert not signals and len(bakes) == 1, (signals, bakes)
            else:
                assert signals and len(bakes) >= 2, (signals, bakes)

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        started = next(e for e in store.events(execution="demo-app-1") if e.type == "rollback_started")
        assert started.data["trigger"] == "alarm"
        (state_, _), = store.alarm_states(PIPELINE, "beta").values()
        assert state_.fired is not None
        assert (parse_time(started.time) - state_.fired).total_seconds() < 5


def test_cancel_during_a_bake_ends_it_and_its_rounds_stop(temporal_server: DevServer, tmp_path: Path) -> None:
    """A bake waiting on datapoints that never come: `cancel` ends the run `cancelled` with its
    `bake_finished` at once, and the bake's activity, asked to stop, records no round after it."""
    record = tmp_path / "record.txt"
    good = tmp_path / "good.txt"
    good.write_text("0\n")
    bake = (f"{{duration: 1s, datapoints: {{positive: {{source: command, command: 'cat {good}'}}, "
            "min_positive: 5}}")
    repo = gated_repo(tmp_path, record, bake=bake)
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> None:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            execution = (await engine.release(PIPELINE, actor="dana")).id
            await wait_for("insufficient data", gate_seen(store, execution, "datapoints", "insufficient_data"))
            await engine.cancel(execution, actor="dana", reason="not today")
            result = await asyncio.wait_for(outcome(engine, execution), 15)
            assert result.status == "cancelled", result
            evaluated = store.gate_evaluations(store.stage_runs(execution=execution)[-1].id)
            await asyncio.sleep(3)  # three polls: a round still running would record again
            assert store.gate_evaluations(store.stage_runs(execution=execution)[-1].id) == evaluated

    with EngineStore.for_state_dir(state) as store:
        asyncio.run(scenario(store))
        run = store.stage_runs(execution="demo-app-1")[-1]
        assert run.status == "cancelled"
        finished = [e for e in store.events(execution="demo-app-1") if e.type == "bake_finished"]
        assert [e.data["result"] for e in finished] == ["cancelled"]
