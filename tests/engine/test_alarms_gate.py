"""The `alarms` gate (domain/gates/alarms.py): an alarm's state over evaluations (fires after
`periods` consecutive breaches, stops at the first that does not, no data is not a breach, a
source error leaves the state), and the gate at a stage's entry and as the deploy-to-bake
tripwire."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import at
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.canonical import canonical_json
from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.gates import GateOutcome, alarms
from pipewarden.engine.domain.gates.alarms import AlarmState, step
from pipewarden.engine.domain.gates.metrics import Observation
from pipewarden.model.view import AlarmView, PrometheusMetric

QUERY = 'sum(rate(http_requests_total{code=~"5..",instance=~"127[.]0[.]0[.]1:9301"}[10s]))'
ALARM = AlarmView("high-error-rate", PrometheusMetric(QUERY), 5, ">", 3)


def value(v: float | None, second: float = 0) -> Observation:
    return Observation.of(v, query=QUERY, observed=at(second), source="prometheus")


def failure(text: str = "cannot connect to Prometheus at http://127.0.0.1:9090", second: float = 0) -> Observation:
    return Observation.failed(text, query=QUERY, observed=at(second), source="prometheus")


def run(observations: list[Observation], alarm: AlarmView = ALARM) -> AlarmState | None:
    state: AlarmState | None = None
    for observation in observations:
        state = step(state, observation, alarm)
    return state


def test_fires_after_periods_consecutive_breaches() -> None:
    state = run([value(7, 0), value(8, 10)])
    assert state is not None and (state.streak, state.firing) == (2, False) and state.breaching
    assert state.since == at(0) and state.fired is None
    state = step(state, value(9, 20), ALARM)
    assert (state.streak, state.firing, state.since, state.fired) == (3, True, at(0), at(20))
    state = step(state, value(9, 30), ALARM)
    assert (state.streak, state.firing, state.fired) == (4, True, at(20))  # still firing, since the same time


def test_stops_at_the_first_evaluation_that_does_not_breach() -> None:
    state = run([value(7), value(7), value(7), value(5, 30)])  # 5 > 5 is not a breach
    assert state is not None and (state.streak, state.firing, state.since, state.fired) == (0, False, None, None)
    assert state.last is not None and state.last.value == 5.0


def test_no_data_is_not_a_breach() -> None:
    state = run([value(7), value(7), value(None)])
    assert state is not None and (state.streak, state.firing) == (0, False)
    state = run([value(7), value(7), value(7), value(None)])
    assert state is not None and not state.firing


def test_a_source_error_leaves_the_state_and_is_reported() -> None:
    state = run([value(7), value(7), failure()])
    assert state is not None and (state.streak, state.firing) == (2, False)
    assert state.error is not None and state.last is not None and state.last.value == 7.0
    state = step(state, value(7, 40), ALARM)
    assert (state.streak, state.firing, state.error) == (3, True, None)
    firing_then_error = step(state, failure(second=50), ALARM)
    assert firing_then_error.firing and firing_then_error.error is not None


@pytest.mark.parametrize(("comparison", "breaching", "calm"), [
    (">", 5.5, 5), (">=", 5, 4.9), ("<", 4.9, 5), ("<=", 5, 5.1)])
def test_comparisons(comparison: str, breaching: float, calm: float) -> None:
    alarm = AlarmView("low-traffic", PrometheusMetric("sum(x)"), 5, comparison, 1)  # type: ignore[arg-type]
    assert run([value(breaching)], alarm).firing  # type: ignore[union-attr]
    assert not run([value(calm)], alarm).firing  # type: ignore[union-attr]


def test_entry_gate() -> None:
    now = at(60)
    assert alarms.evaluate({}, now=now).passed
    calm = run([value(1)])
    assert calm is not None
    result = alarms.evaluate({"high-error-rate": calm}, now=now, expected=["high-error-rate"])
    assert result.passed and result.reason == "no alarm firing or breaching (high-error-rate)"
    breaching = run([value(7)])
    assert breaching is not None
    result = alarms.evaluate({"high-error-rate": breaching}, now=now)
    assert (result.result, result.code) == (GateOutcome.WAIT, "alarm_breaching")
    assert result.reason == "alarm high-error-rate is breaching: 7 > 5, 1 of 3 evaluations"
    firing = run([value(7), value(7), value(7.5)])
    assert firing is not None
    result = alarms.evaluate({"high-error-rate": firing, "latency": calm}, now=now)
    assert (result.result, result.code) == (GateOutcome.WAIT, "alarm_firing")
    assert result.reason == "alarm high-error-rate is firing: 7.5 > 5 for 3 evaluations (periods 3)"


def test_tripwire_fails_when_an_alarm_fires() -> None:
    now = at(60)
    firing = run([value(7), value(7), value(7)])
    errored = run([failure()])
    assert firing is not None and errored is not None
    result = alarms.evaluate({"high-error-rate": firing, "other": errored}, now=now, phase="tripwire")
    assert (result.result, result.code) == (GateOutcome.FAIL, "alarm_firing")
    assert result.inputs["phase"] == "tripwire"
    # A streak short of periods holds the bake (WAIT) but does not fail it.
    breaching = run([value(7)])
    assert breaching is not None
    result = alarms.evaluate({"high-error-rate": breaching}, now=now, phase="tripwire")
    assert (result.result, result.code) == (GateOutcome.WAIT, "alarm_breaching")


def test_source_errors_and_unevaluated_alarms_wait() -> None:
    now = at(60)
    errored = run([failure("Prometheus answered HTTP 400 (bad_data): parse error")])
    assert errored is not None
    for phase in ("entry", "tripwire"):
        result = alarms.evaluate({"high-error-rate": errored}, now=now, phase=phase)  # type: ignore[arg-type]
        assert (result.result, result.code) == (GateOutcome.WAIT, "source_error")
        assert result.reason == "alarm high-error-rate cannot be evaluated: Prometheus answered HTTP 400 (bad_data): parse error"
    result = alarms.evaluate({}, now=now, expected=["high-error-rate"])
    assert (result.code, result.reason) == ("source_error", "alarm high-error-rate has not been evaluated yet")
    # a state too old to trust says when it was last evaluated
    old = alarms.evaluate({}, now=now, expected=["high-error-rate"], stale={"high-error-rate": at(0)})
    assert (old.result, old.code) == (GateOutcome.WAIT, "source_error")
    assert old.reason == ("alarm high-error-rate was last evaluated at 2026-12-01T15:00:00.000Z, too long ago to "
                          "trust (the server's alarm evaluator is behind or not running)")
    with pytest.raises(InvalidValue):
        alarms.evaluate({}, now=now, phase="bake")  # type: ignore[arg-type]


def test_inputs_and_state_round_trip() -> None:
    state = run([value(7, 0), value(8, 10), failure(second=20)])
    assert state is not None
    result = alarms.evaluate({"high-error-rate": state}, now=at(20))
    data = result.inputs["alarms"]["high-error-rate"]
    assert data["threshold"] == 5.0 and data["comparison"] == ">" and data["periods"] == 3 and data["streak"] == 2
    assert data["last"]["query"] == QUERY and data["last"]["value"] == 8.0 and data["error"]["error"]
    assert result.inputs["now"] == "2026-12-01T15:00:20.000Z"
    canonical_json(result.event_data("alarms"))
    assert AlarmState.from_json(state.to_json()) == state


def test_state_crosses_temporal_as_it_is() -> None:
    # The integration passes states between the server's alarm loop, activities and workflows.
    from temporalio.converter import DataConverter

    state = run([value(7, 0), value(8, 10), failure(second=20)])

    async def round_trip() -> list[object]:
        payloads = await DataConverter.default.encode([state])
        return await DataConverter.default.decode(payloads, [AlarmState])

    assert asyncio.run(round_trip()) == [state]


def test_periods_must_be_positive() -> None:
    with pytest.raises(InvalidValue):
        step(None, value(1), AlarmView("x", PrometheusMetric("x"), 1, ">", 0))


# Each evaluation: a breaching value, a calm value, no data, or a source error.
evaluations = st.lists(st.sampled_from(["breach", "calm", "none", "error"]), max_size=30)


@given(evaluations, st.integers(1, 4))
def test_state_matches_a_plain_reading_of_engine_md(kinds: list[str], periods: int) -> None:
    alarm = AlarmView("a", PrometheusMetric("sum(x)"), 5, ">", periods)
    made = {"breach": lambda s: value(9, s), "calm": lambda s: value(1, s), "none": lambda s: value(None, s),
            "error": lambda s: failure(second=s)}
    state = run([made[kind](10 * i) for i, kind in enumerate(kinds)], alarm)
    # Errors leave the state: judge the evaluations that read something.
    judged = [kind for kind in kinds if kind != "error"]
    streak = 0
    for kind in reversed(judged):
        if kind != "breach":
            break
        streak += 1
    if state is None:
        assert not kinds
        return
    assert state.streak == streak
    assert state.firing == (streak >= periods)
    assert (state.error is not None) == (kinds[-1] == "error")
    entry = alarms.evaluate({"a": state}, now=at(999))
    tripwire = alarms.evaluate({"a": state}, now=at(999), phase="tripwire")
    if state.firing:
        assert entry.code == tripwire.code == "alarm_firing" and tripwire.failed and entry.waiting
    elif streak:
        assert entry.code == tripwire.code == "alarm_breaching"
    elif state.error is not None:
        assert entry.code == tripwire.code == "source_error"
    else:
        assert entry.passed and tripwire.passed
