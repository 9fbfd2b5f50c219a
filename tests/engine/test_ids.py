"""Ids and times (domain/ids.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.ids import (
    artifact_id,
    execution_id,
    format_time,
    parse_execution_id,
    parse_since,
    parse_time,
    truncate_ms,
)


def test_execution_ids() -> None:
    assert execution_id("release-demo", 7) == "release-demo-7"
    assert parse_execution_id("shop-2-17") == ("shop-2", 17)
    for bad in ("shop", "shop-0", "shop-07", "Shop-1", "-1", "shop-1x"):
        with pytest.raises(InvalidValue):
            parse_execution_id(bad)
    for pipeline, number in (("shop", 0), ("Shop", 1), ("shop", True)):
        with pytest.raises(InvalidValue):
            execution_id(pipeline, number)  # type: ignore[arg-type]


def test_artifact_id() -> None:
    assert artifact_id("9f8e7d6c5b4a" + "0" * 28) == "9f8e7d6c5b4a"
    for bad in ("9f8e7d6c5b4a", "G" * 40, "9F8E7D6C5B4A" + "0" * 28):
        with pytest.raises(InvalidValue):
            artifact_id(bad)


def test_times() -> None:
    moment = datetime(2026, 12, 1, 16, 4, 0, 125999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-12-01T15:04:00.125Z"
    assert parse_time("2026-12-01T15:04:00.125Z") == datetime(2026, 12, 1, 15, 4, 0, 125000, tzinfo=UTC)
    for bad in ("2026-12-01T15:04:00Z", "2026-12-01T15:04:00.125+00:00", "2026-02-30T00:00:00.000Z"):
        with pytest.raises(InvalidValue):
            parse_time(bad)
    with pytest.raises(InvalidValue):
        format_time(datetime(2026, 1, 1))  # naive: no offset, no guess
    assert parse_since("2026-12-01T15:04:00Z") == datetime(2026, 12, 1, 15, 4, tzinfo=UTC)
    assert parse_since("2026-12-01T16:04:00+01:00") == datetime(2026, 12, 1, 15, 4, tzinfo=UTC)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(InvalidValue):
        parse_since("yesterday")


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_time_text_round_trips_and_sorts(a: datetime, b: datetime) -> None:
    assert parse_time(format_time(a)) == truncate_ms(a)
    if truncate_ms(a) < truncate_ms(b):
        assert format_time(a) < format_time(b)
