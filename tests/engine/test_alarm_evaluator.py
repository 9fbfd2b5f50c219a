"""The server's alarm evaluator (engine/alarms.py) over the real store: every alarm of every stage
of the stored definitions, with the stage's placeholders, `periods` consecutive breaches before
firing, states per (pipeline, stage, alarm) in the store; and the states as the gates read them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_helpers import pipeline_yaml

from pipewarden.engine.activities.engine import engine_sources
from pipewarden.engine.alarms import AlarmEvaluator
from pipewarden.engine.domain.gates import alarms as alarms_gate
from pipewarden.engine.store import EngineStore

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def define(store: EngineStore, name: str, value_file: Path, *, periods: int = 2, hosts_file: Path | None = None,
           slow: bool = False) -> None:
    """Pipeline `name` (beta and prod) whose alarm `errors` reads `value_file`; prod lists it,
    beta lists it only with `hosts_file` (there the command also writes the stage and hosts).
    `slow`: the command takes a second first."""
    command = f"{'sleep 1; ' if slow else ''}cat {value_file}"
    if hosts_file is not None:
        command = f'echo "$PIPEWARDEN_STAGE $PIPEWARDEN_HOSTS $PIPEWARDEN_SINCE" >> {hosts_file}; cat {value_file}'
    text = pipeline_yaml(2).replace("name: demo-app", f"name: {name}", 1)
    text = text.replace("stages:\n", "alarms:\n  errors:\n    metric: {source: command, command: "
                        + yaml.safe_dump(command, default_style="'").strip()
                        + f"}}\n    threshold: 10\n    comparison: '>='\n    periods: {periods}\nstages:\n", 1)
    document = yaml.safe_load(text)
    for stage in document["stages"]:
        if stage["name"] == "prod" or hosts_file is not None:
            stage["alarms"] = ["errors"]
    store.set_pipeline_source(name, repo="/nowhere", branch="main", path="pipeline.yaml", now=T0)
    store.set_definition(name, document, commit="a" * 40, team="demo", org=None, now=T0)


def test_periods_consecutive_breaches_fire_and_the_first_good_value_stops_it(tmp_path: Path) -> None:
    value = tmp_path / "value"
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        define(store, "shop", value, periods=2)
        evaluator = AlarmEvaluator(store, engine_sources(store, None), ["shop"], poll_seconds=5)
        seen: list[tuple[int, bool]] = []
        for second, text in enumerate(["3", "12", "", "12", "10", "11", "4"]):
            value.write_text(text)
            assert evaluator.round(T0 + timedelta(seconds=5 * second)) == 1  # beta lists no alarm
            state, evaluated = store.alarm_states("shop", "prod")["errors"]
            assert evaluated == T0 + timedelta(seconds=5 * second)
            seen.append((state.streak, state.firing))
        # no data ("") ends a streak; the second consecutive breach fires; 4 stops it
        assert seen == [(0, False), (1, False), (0, False), (1, False), (2, True), (3, True), (0, False)]
        assert store.alarm_states("shop", "beta") == {}


def test_each_stage_is_read_with_its_own_placeholders_and_an_unreadable_pipeline_is_skipped(tmp_path: Path) -> None:
    value, hosts = tmp_path / "value", tmp_path / "hosts"
    value.write_text("1\n")
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        define(store, "shop", value, hosts_file=hosts)
        store.set_pipeline_source("broken", repo="/nowhere", branch="main", path="pipeline.yaml", now=T0)
        store.set_definition("broken", {"stages": "not a list"}, commit="b" * 40, team="demo", org=None, now=T0)
        evaluator = AlarmEvaluator(store, engine_sources(store, None), None, poll_seconds=10)
        assert evaluator.round(T0) == 2
        since = int((T0 - timedelta(seconds=10)).timestamp())
        assert sorted(hosts.read_text().splitlines()) == [
            f"beta 127.0.0.1:9301 127.0.0.1:9302 {since}", f"prod 127.0.0.1:9401 127.0.0.1:9402 {since}"]
        states = {name: state for name, (state, _) in store.alarm_states("shop", "beta").items()}
        gate = alarms_gate.evaluate(states, now=T0, phase="entry", expected=["errors"])
        assert gate.passed and states["errors"].last is not None and states["errors"].last.value == 1.0


def test_a_source_error_keeps_the_state_and_the_gate_waits(tmp_path: Path) -> None:
    value = tmp_path / "value"
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        define(store, "shop", value, periods=1)
        evaluator = AlarmEvaluator(store, engine_sources(store, None), ["shop"], poll_seconds=5)
        value.write_text("20")
        evaluator.round(T0)
        value.write_text("not a number")
        evaluator.round(T0 + timedelta(seconds=5))
        state, _ = store.alarm_states("shop", "prod")["errors"]
        assert state.firing and state.error is not None
        entry = alarms_gate.evaluate({"errors": state}, now=T0, phase="entry", expected=["errors"])
        assert (str(entry.result), entry.code) == ("wait", "alarm_firing")


def test_the_loop_runs_a_round_at_once_and_stops(tmp_path: Path) -> None:
    value = tmp_path / "value"
    value.write_text("0")
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        define(store, "shop", value)
        evaluator = AlarmEvaluator(store, engine_sources(store, None), ["shop"], poll_seconds=1)

        async def run() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(evaluator.run(stop, lambda: datetime.now(UTC)))
            for _ in range(100):
                if store.alarm_states("shop", "prod"):
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 5)

        asyncio.run(run())
        assert "errors" in store.alarm_states("shop", "prod")


def test_stages_are_read_at_the_same_time(tmp_path: Path) -> None:
    value = tmp_path / "value"
    value.write_text("0")
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        for name in ("one", "two", "three"):
            define(store, name, value, slow=True)
        evaluator = AlarmEvaluator(store, engine_sources(store, None), None, poll_seconds=5)
        started = time.monotonic()
        assert evaluator.round(T0) == 3
        assert time.monotonic() - started < 2.5  # one after the other: at least 3 s
        assert sorted(evaluator.changed) == [("one", "prod"), ("three", "prod"), ("two", "prod")]
        evaluator.round(T0 + timedelta(seconds=5))
        assert evaluator.changed == []  # nothing new, nothing started or stopped


def test_a_round_stores_every_stage_in_one_write_and_a_failed_stage_keeps_its_states(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = tmp_path / "value"
    value.write_text("12")
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        for name in ("one", "two", "three"):
            define(store, name, value)
        evaluator = AlarmEvaluator(store, engine_sources(store, None), None, poll_seconds=5)
        writes: list[int] = []
        original = store.put_round_alarm_states

        def counted(stages: Any, *, now: datetime) -> None:
            writes.append(len(stages))
            original(stages, now=now)

        monkeypatch.setattr(store, "put_round_alarm_states", counted)
        assert evaluator.round(T0) == 3
        assert writes == [3]  # one transaction for the three stages
        # "two"'s definition breaks: its stage is skipped, its stored state stays as it was
        record = store.pipeline("two")
        assert record is not None and record.definition is not None
        broken = dict(record.definition, alarms={"errors": {"metric": {"source": "command", "command": 3}}})
        store.set_definition("two", broken, commit="b" * 40, team="demo", org=None, now=T0)
        evaluator.round(T0 + timedelta(seconds=5))
        assert store.alarm_states("two", "prod")["errors"][1] == T0
        assert store.alarm_states("one", "prod")["errors"][1] == T0 + timedelta(seconds=5)
