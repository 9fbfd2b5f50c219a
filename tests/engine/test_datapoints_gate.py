"""The `datapoints` gate (domain/gates/datapoints.py): engine.md's three outcomes, no data never a
pass, source errors and silent synthetics wait, and every evaluation carries its inputs."""

from __future__ import annotations

import pytest
from engine_helpers import T0, at
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.canonical import canonical_json
from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.gates import GateOutcome, datapoints
from pipewarden.engine.domain.gates.metrics import Observation

POSITIVE = 'sum(increase(http_requests_total{code!~"5..",instance=~"127[.]0[.]0[.]1:9301"}[317s]))'
NEGATIVE = 'sum(increase(http_requests_total{code=~"5..",instance=~"127[.]0[.]0[.]1:9301"}[317s]))'


def pos(value: float | None) -> Observation:
    return Observation.of(value, query=POSITIVE, observed=at(317), source="prometheus")


def neg(value: float | None) -> Observation:
    return Observation.of(value, query=NEGATIVE, observed=at(317), source="prometheus")


def error(text: str, *, silent: bool = False) -> Observation:
    return Observation.failed(text, query=POSITIVE, observed=at(317), source="synthetic" if silent else "prometheus",
                              silent=silent)


def test_pass_when_enough_positive_and_few_negative() -> None:
    result = datapoints.evaluate(pos(3000), neg(0), 3000, 0, now=at(317))
    assert result.passed and result.reason == "3000 positive of 3000, 0 negative of at most 0"
    assert datapoints.evaluate(pos(3001.5), neg(2), 3000, 2, now=at(317)).passed


def test_insufficient_data_shows_both_counts_and_what_is_missing() -> None:
    result = datapoints.evaluate(pos(1204), neg(0), 3000, 0, now=at(317))
    assert (result.result, result.code) == (GateOutcome.WAIT, "insufficient_data") and result.until is None
    assert result.reason == "1204 positive of 3000, 0 negative of at most 0: 1796 more positive needed"
    extrapolated = datapoints.evaluate(pos(105.4), neg(1), 200, 3, now=at(317))
    assert extrapolated.reason == "105.4 positive of 200, 1 negative of at most 3: 94.6 more positive needed"


def test_negative_above_max_fails_at_once_whatever_positive_says() -> None:
    for positive in (pos(5000), pos(10), pos(None), error("connection refused")):
        result = datapoints.evaluate(positive, neg(1), 3000, 0, now=at(317))
        assert (result.result, result.code) == (GateOutcome.FAIL, "negative_datapoints")
        assert result.reason.startswith("1 negative of at most 0 (")
    assert datapoints.evaluate(pos(5000), neg(4), 3000, 3, now=at(1)).failed
    assert not datapoints.evaluate(pos(5000), neg(3), 3000, 3, now=at(1)).failed


def test_no_data_is_never_a_pass() -> None:
    result = datapoints.evaluate(pos(None), neg(None), 0, 0, now=at(317))
    assert (result.result, result.code) == (GateOutcome.WAIT, "insufficient_data")
    assert result.reason == "no positive data yet (of 0), 0 negative of at most 0"
    assert not datapoints.evaluate(pos(None), None, 3000, 0, now=at(317)).passed


def test_empty_or_absent_negative_counts_zero_once_positive_has_data() -> None:
    assert datapoints.evaluate(pos(3000), neg(None), 3000, 0, now=at(317)).passed
    result = datapoints.evaluate(pos(3000), None, 3000, 0, now=at(317))
    assert result.passed and result.inputs["negative"] is None


def test_source_errors_wait_and_never_pass() -> None:
    result = datapoints.evaluate(error("Prometheus answered HTTP 400 (bad_data): parse error"), neg(0), 10, 0,
                                 now=at(317))
    assert (result.result, result.code) == (GateOutcome.WAIT, "source_error")
    assert result.reason == "the positive query cannot be read: Prometheus answered HTTP 400 (bad_data): parse error"
    negative_error = Observation.failed("the query returned 2 series", query=NEGATIVE, observed=at(317))
    result = datapoints.evaluate(pos(5000), negative_error, 10, 0, now=at(317))
    assert (result.code, result.reason) == ("source_error", "the negative query cannot be read: the query returned 2 series")


def test_silent_synthetic_waits_with_its_own_code() -> None:
    result = datapoints.evaluate(error("synthetic api (every 10s): no request ...", silent=True), None, 10, 0,
                                 now=at(317))
    assert (result.result, result.code) == (GateOutcome.WAIT, "synthetic_silent")


def test_inputs_hold_queries_values_thresholds_and_clock() -> None:
    result = datapoints.evaluate(pos(1204), neg(0), 3000, 0, now=at(317))
    assert result.inputs == {
        "now": "2026-12-01T15:05:17.000Z", "min_positive": 3000, "max_negative": 0,
        "positive": {"source": "prometheus", "query": POSITIVE, "value": 1204.0, "error": None, "silent": False,
                     "observed": "2026-12-01T15:05:17.000Z"},
        "negative": {"source": "prometheus", "query": NEGATIVE, "value": 0.0, "error": None, "silent": False,
                     "observed": "2026-12-01T15:05:17.000Z"},
    }
    canonical_json(result.event_data("datapoints"))  # the gate event's data is JSON


def test_observation_rules() -> None:
    with pytest.raises(InvalidValue):
        Observation(1.0, "both", "q", T0)
    with pytest.raises(InvalidValue):
        Observation(float("nan"), None, "q", T0)
    with pytest.raises(InvalidValue):
        Observation(None, None, "q", T0, silent=True)
    assert Observation.of(3, observed=T0).value == 3.0


counts = st.one_of(st.none(), st.integers(0, 10_000).map(float), st.floats(0, 10_000, allow_nan=False))


@given(counts, st.one_of(st.just("absent"), counts), st.integers(0, 5000), st.integers(0, 5))
def test_outcomes_follow_engine_md(good: float | None, bad: float | str | None, min_positive: int,
                                   max_negative: int) -> None:
    # bad: "absent" (no `negative` reference), None (an empty result) or a count.
    negative = None if bad == "absent" else neg(None if bad is None else float(bad))
    result = datapoints.evaluate(pos(good), negative, min_positive, max_negative, now=at(317))
    counted_bad = bad if isinstance(bad, float) else 0.0
    if counted_bad > max_negative:
        assert result.failed and result.code == "negative_datapoints"
    elif good is not None and good >= min_positive:
        assert result.passed
    else:
        assert result.waiting and result.code == "insufficient_data"
        assert "positive" in result.reason and f"negative of at most {max_negative}" in result.reason
    if good is None:
        assert not result.passed  # no data is never a pass
