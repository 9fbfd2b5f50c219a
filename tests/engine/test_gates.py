"""The gates built in issue 13 and their one interface (domain/gates/)."""

from __future__ import annotations

import pytest
from engine_helpers import T0, at, stage

from pipewarden.engine.domain.errors import InvalidValue, Refused
from pipewarden.engine.domain.gates import (
    BAKE_GATES,
    BUILT,
    ENTRY_GATES,
    FAIL,
    PASS,
    WAIT,
    GateOutcome,
    approval,
    bake_gates,
    bake_time,
    blocklist,
    combine,
    earliest_pass,
    entry_gates,
    event_needed,
    paused,
    policy,
    stage_busy,
)
from pipewarden.engine.domain.gates.policy import PolicyFinding
from pipewarden.engine.domain.gates.stage_busy import Occupant
from pipewarden.engine.domain.status import StageRunStatus


def test_registry_order_is_engine_md() -> None:
    assert ENTRY_GATES == ("policy", "blocklist", "approval", "window", "alarms", "stage_busy", "paused")
    assert BAKE_GATES == ("bake_time", "datapoints")
    # Issue 14 adds its gates one by one: those of issue 13 and the blocklist are built.
    assert {policy.NAME, blocklist.NAME, approval.NAME, stage_busy.NAME, paused.NAME, bake_time.NAME} <= BUILT
    assert set(ENTRY_GATES + BAKE_GATES) >= BUILT


def test_entry_gates_of_a_stage() -> None:
    plain = stage()
    assert entry_gates(plain) == ("policy", "blocklist", "stage_busy", "paused")
    assert entry_gates(plain, built_only=False) == ("policy", "blocklist", "stage_busy", "paused")
    assert entry_gates(stage(approvals=("release-manager",))) == ("policy", "blocklist", "approval", "stage_busy",
                                                                  "paused")
    assert bake_gates(plain) == ("bake_time",)


def test_result_shape_and_rules() -> None:
    result = WAIT("baking", "baking 1m of 60m", until=at(59 * 60 + 0.0004567), inputs={"x": 1})
    assert result.to_json("bake_time") == {
        "gate": "bake_time", "result": "wait", "code": "baking", "reason": "baking 1m of 60m",
        "until": "2026-12-01T15:59:00.000Z"}
    assert result.event_data("bake_time")["inputs"] == {"x": 1}
    assert PASS().code == "ok" and PASS().passed
    assert FAIL("enforce_findings", "x").failed
    with pytest.raises(InvalidValue):
        FAIL("ok", "a failing gate never has code ok")
    with pytest.raises(InvalidValue):
        FAIL("x", "y", inputs={"bad": float("nan")})


def test_event_needed_only_on_first_or_change() -> None:
    first = WAIT("baking", "baking 1m of 60m")
    assert event_needed(None, first)
    assert not event_needed(first, WAIT("baking", "baking 2m of 60m"))
    assert event_needed(first, WAIT("insufficient_data", "0 of 3000"))
    assert event_needed(first, PASS())


def test_combine_and_earliest_pass() -> None:
    assert combine([]) is GateOutcome.PASS
    assert combine([PASS(), WAIT("a", "b")]) is GateOutcome.WAIT
    assert combine([WAIT("a", "b"), FAIL("c", "d")]) is GateOutcome.FAIL
    assert earliest_pass([WAIT("a", "b", until=at(10)), WAIT("a", "b", until=at(20)), PASS()]) == at(20)
    assert earliest_pass([WAIT("a", "b", until=at(10)), WAIT("approval_missing", "b")]) is None


def test_policy() -> None:
    findings = [
        PolicyFinding("prod-bake-time", "enforce", "stages[2].bake.duration", "bake at least 1h"),
        PolicyFinding("canary-first", "enforce", "stages", "no canary", excepted=True),
        PolicyFinding("synthetic-monitoring", "warn", "", "add synthetics"),
    ]
    result = policy.evaluate(findings, now=T0)
    assert result.failed and result.code == "enforce_findings"
    assert "prod-bake-time at stages[2].bake.duration: bake at least 1h" in result.reason
    assert result.inputs["enforce"] == [{"rule": "prod-bake-time", "path": "stages[2].bake.duration",
                                         "message": "bake at least 1h"}]
    passing = policy.evaluate(findings[1:], now=T0)
    assert passing.passed and "1 excepted" in passing.reason
    assert policy.evaluate([], now=T0).passed
    waiting = policy.evaluate([], now=T0, config_error="org.yaml:3: bad level")
    assert waiting.waiting and waiting.code == "config_error" and "org.yaml:3" in waiting.reason


def test_policy_lists_at_most_five_in_the_reason() -> None:
    findings = [PolicyFinding(f"rule-{i}", "enforce", f"p{i}", "m") for i in range(8)]
    result = policy.evaluate(findings, now=T0)
    assert result.reason.startswith("8 enforce findings: ") and result.reason.endswith("and 3 more")
    assert len(result.inputs["enforce"]) == 8


def test_approval() -> None:
    assert approval.evaluate([], [], now=T0).passed
    waiting = approval.evaluate(["security", "release-manager"], {"security"}, now=T0)
    assert waiting.code == "approval_missing" and waiting.reason.endswith("release-manager")
    assert waiting.until is None
    assert approval.evaluate(["security"], {"security", "other"}, now=T0).passed


def test_approval_to_give() -> None:
    assert approval.approval_to_give(["security"], set(), None) == "security"
    assert approval.approval_to_give(["a", "b"], set(), "b") == "b"
    for required, given, name in [([], set(), None), (["a", "b"], set(), None), (["a"], set(), "c"),
                                  (["a"], {"a"}, None)]:
        with pytest.raises(Refused):
            approval.approval_to_give(required, given, name)


def test_stage_busy() -> None:
    runs = [Occupant("shop-6", StageRunStatus.SUCCEEDED), Occupant("shop-7", StageRunStatus.BAKING)]
    busy = stage_busy.evaluate("shop-8", runs, now=T0)
    assert busy.code == "stage_busy" and "shop-7 (baking)" in busy.reason
    assert stage_busy.evaluate("shop-7", runs, now=T0).passed  # its own run does not block it
    assert stage_busy.evaluate("shop-8", [Occupant("shop-7", StageRunStatus.AWAITING_PROMOTION)], now=T0).passed
    assert stage_busy.evaluate("shop-8", [Occupant("shop-7", StageRunStatus.ROLLING_BACK)], now=T0).waiting
    assert stage_busy.evaluate("shop-8", [], now=T0).passed


def test_paused() -> None:
    assert paused.evaluate(False, now=T0).passed
    result = paused.evaluate(True, now=T0, by="dana", reason="incident 42")
    assert result.code == "paused" and result.reason == "the pipeline is paused by dana: incident 42"


def test_bake_time() -> None:
    waiting = bake_time.evaluate(T0, 3600, now=at(12 * 60 + 30))
    assert waiting.code == "baking" and waiting.reason == "baking 12m of 60m" and waiting.until == at(3600)
    assert bake_time.evaluate(T0, 3600, now=at(3600)).passed
    assert bake_time.evaluate(T0, 0, now=T0).passed
    short = bake_time.evaluate(T0, 5, now=at(2.5))
    assert short.reason == "baking 2s of 5s" and short.until == at(5)
    assert bake_time.evaluate(None, 60, now=T0).code == "bake_not_started"
    late = bake_time.evaluate(T0, 3600, now=at(1800), deadline_seconds=1800)
    assert late.failed and late.code == "deadline"
    assert bake_time.evaluate(T0, 3600, now=at(1799), deadline_seconds=1800).waiting
    # A clock behind the start reads as no time elapsed.
    assert bake_time.evaluate(T0, 60, now=at(-5)).reason == "baking 0s of 60s"
