"""The `window` gate (domain/gates/window.py): unit cases, DST cases, and property tests against a
brute-force reference that walks forward minute by minute in UTC reading the wall clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.gates import GateOutcome, GateResult
from pipewarden.engine.domain.gates import window as gate
from pipewarden.model.durations import clock_minutes
from pipewarden.model.view import DAYS, WindowView

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
MINUTE = timedelta(minutes=1)


def win(start: str, end: str, days: tuple[str, ...] = WEEKDAYS, tz: str = "UTC", name: str = "w") -> WindowView:
    return WindowView(name, tz, days, clock_minutes(start), clock_minutes(end))


def local(tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *,
          fold: int = 0) -> datetime:
    """An aware UTC instant from a wall time in `tz` (`fold` picks the pass of a repeated hour)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def check(window: WindowView, bake: int, now: datetime, until: datetime | None = None, *,
          result: GateOutcome = GateOutcome.WAIT) -> GateResult:
    """Evaluate and check the outcome and `until`, and that `next_fit` agrees."""
    evaluation = gate.evaluate(window, bake, now=now)
    assert evaluation.result is result, evaluation.reason
    assert evaluation.until == until, evaluation.reason
    if result is GateOutcome.PASS:
        assert evaluation.code == "ok"
        assert gate.next_fit(window, bake, now) == now
    elif result is GateOutcome.WAIT:
        assert evaluation.code == "window_closed"
        assert gate.next_fit(window, bake, now) == until
    json.dumps(dict(evaluation.inputs))
    return evaluation


# ---------------------------------------------------------------- plain cases


BUSINESS = win("09:00", "17:00", tz="America/Los_Angeles", name="business-hours")
LA = "America/Los_Angeles"


def test_inside_passes() -> None:
    now = local(LA, 2026, 12, 1, 10, 0, 0) + timedelta(seconds=7.25)  # Tuesday, seconds-level
    evaluation = check(BUSINESS, 3600, now, result=GateOutcome.PASS)
    assert evaluation.reason == ("window business-hours (America/Los_Angeles: mon,tue,wed,thu,fri 09:00-17:00) is open "
                                 "at Tue 2026-12-01 10:00:07 PST until Tue 2026-12-01 17:00 PST: room for a bake of 60m")
    assert evaluation.inputs == {
        "now": "2026-12-01T18:00:07.250Z", "now_local": "2026-12-01T10:00:07.250-08:00",
        "window": "business-hours", "definition": {"days": list(WEEKDAYS), "start": "09:00", "end": "17:00"},
        "timezone": LA, "length_minutes": 480, "bake_s": 3600,
        "stretch": {"opens": "2026-12-01T17:00:00.000Z", "closes": "2026-12-02T01:00:00.000Z",
                    "opens_local": "2026-12-01T09:00:00.000-08:00", "closes_local": "2026-12-01T17:00:00.000-08:00"}}


def test_before_opening_waits_for_it() -> None:
    evaluation = check(BUSINESS, 3600, local(LA, 2026, 12, 1, 8, 59, 59), local(LA, 2026, 12, 1, 9, 0))
    assert evaluation.reason == (
        "window business-hours (America/Los_Angeles: mon,tue,wed,thu,fri 09:00-17:00) is closed at Tue 2026-12-01 "
        "08:59:59 PST; it next opens with room for a bake of 60m on Tue 2026-12-01 09:00 PST (2026-12-01T17:00:00.000Z)")
    assert evaluation.inputs["stretch"] is None
    assert evaluation.inputs["next"]["opens_local"] == "2026-12-01T09:00:00.000-08:00"
    check(BUSINESS, 3600, local(LA, 2026, 12, 1, 9, 0), result=GateOutcome.PASS)  # the opening itself is inside


def test_after_closing_waits_for_the_next_day_and_over_the_weekend() -> None:
    check(BUSINESS, 0, local(LA, 2026, 12, 1, 17, 0), local(LA, 2026, 12, 2, 9, 0))  # the close is not inside
    check(BUSINESS, 0, local(LA, 2026, 12, 1, 16, 59, 59), result=GateOutcome.PASS)
    check(BUSINESS, 0, local(LA, 2026, 12, 4, 17, 30), local(LA, 2026, 12, 7, 9, 0))  # Friday -> Monday
    check(BUSINESS, 0, local(LA, 2026, 12, 6, 12, 0), local(LA, 2026, 12, 7, 9, 0))  # Sunday


def test_bake_that_does_not_fit_before_the_close_waits_for_the_next_opening() -> None:
    now = local(LA, 2026, 12, 1, 16, 0)
    check(BUSINESS, 3600, now, result=GateOutcome.PASS)  # ends exactly at the close: at or before
    evaluation = check(BUSINESS, 3601, now, local(LA, 2026, 12, 2, 9, 0))
    assert "closes Tue 2026-12-01 17:00 PST, before a bake of 3601s started at Tue 2026-12-01 16:00 PST would end" \
        in evaluation.reason
    assert evaluation.inputs["stretch"]["closes_local"] == "2026-12-01T17:00:00.000-08:00"
    assert evaluation.inputs["next"]["opens_local"] == "2026-12-02T09:00:00.000-08:00"
    check(BUSINESS, 8 * 3600, local(LA, 2026, 12, 4, 9, 0, 1), local(LA, 2026, 12, 7, 9, 0))  # a full bake: Monday


def test_window_crossing_midnight_opens_on_its_days() -> None:
    night = win("22:00", "06:00", days=("fri",), tz="Europe/Berlin", name="night")
    berlin = "Europe/Berlin"
    check(night, 0, local(berlin, 2026, 12, 5, 3, 0), result=GateOutcome.PASS)  # Saturday 03:00: Friday's
    check(night, 0, local(berlin, 2026, 12, 4, 3, 0), local(berlin, 2026, 12, 4, 22, 0))  # Friday 03:00: closed
    check(night, 7 * 3600, local(berlin, 2026, 12, 4, 23, 0), result=GateOutcome.PASS)  # until Sat 06:00
    check(night, 7 * 3600 + 1, local(berlin, 2026, 12, 4, 23, 0), local(berlin, 2026, 12, 11, 22, 0))
    check(night, 3600, local(berlin, 2026, 12, 5, 5, 30), local(berlin, 2026, 12, 11, 22, 0))
    check(night, 0, local(berlin, 2026, 12, 5, 6, 0), local(berlin, 2026, 12, 11, 22, 0))
    ends_at_midnight = win("18:00", "00:00", days=("mon",))
    check(ends_at_midnight, 6 * 3600, utc(2026, 11, 30, 18, 0), result=GateOutcome.PASS)
    check(ends_at_midnight, 0, utc(2026, 12, 1, 0, 0), utc(2026, 12, 7, 18, 0))


def test_occurrences_that_touch_are_one_stretch() -> None:
    # Mon 09:00 - Tue 09:00 and Tue 09:00 - Wed 09:00: one open stretch of 48 hours.
    two_days = win("09:00", "09:00", days=("mon", "tue"))
    evaluation = check(two_days, 24 * 3600, utc(2026, 11, 30, 23, 0), result=GateOutcome.PASS)
    assert evaluation.inputs["stretch"]["opens"] == "2026-11-30T09:00:00.000Z"
    assert evaluation.inputs["stretch"]["closes"] == "2026-12-02T09:00:00.000Z"
    check(two_days, 24 * 3600, utc(2026, 12, 1, 9, 0), result=GateOutcome.PASS)  # across the touching point
    check(two_days, 24 * 3600, utc(2026, 12, 1, 9, 0, 1), utc(2026, 12, 7, 9, 0))
    # Whole days Monday to Friday: Mon 00:00 - Sat 00:00.
    weekdays = win("00:00", "00:00")
    evaluation = check(weekdays, 24 * 3600, utc(2026, 12, 4, 0, 0), result=GateOutcome.PASS)
    assert evaluation.inputs["stretch"]["closes"] == "2026-12-05T00:00:00.000Z"
    check(weekdays, 24 * 3600, utc(2026, 12, 4, 0, 0, 1), utc(2026, 12, 7, 0, 0))
    # Days that do not touch: Monday and Wednesday, whole days.
    apart = win("00:00", "00:00", days=("mon", "wed"))
    check(apart, 24 * 3600, utc(2026, 11, 30, 12, 0), utc(2026, 12, 2, 0, 0))
    # Open all week: no close within the span looked at.
    always = win("06:00", "06:00", days=DAYS)
    evaluation = check(always, 24 * 3600, utc(2026, 12, 1, 12, 0), result=GateOutcome.PASS)
    assert evaluation.inputs["stretch"] == {"opens": None, "closes": None, "opens_local": None, "closes_local": None}
    assert "for more than 14 days" in evaluation.reason


def test_bake_longer_than_the_written_length_fails() -> None:
    evaluation = check(BUSINESS, 8 * 3600 + 1, local(LA, 2026, 12, 1, 9, 0), result=GateOutcome.FAIL)
    assert evaluation.code == "window_too_short"
    assert evaluation.reason == ("window business-hours (America/Los_Angeles: mon,tue,wed,thu,fri 09:00-17:00) is open "
                                 "480m at a time; a bake of 28801s can never finish inside it")
    assert gate.next_fit(BUSINESS, 8 * 3600 + 1, local(LA, 2026, 12, 1, 9, 0)) is None
    # Also when touching occurrences make a longer stretch (engine.md: the written length).
    assert gate.evaluate(win("00:00", "00:00"), 24 * 3600 + 60, now=utc(2026, 11, 30, 0, 0)).code == "window_too_short"
    check(BUSINESS, 8 * 3600, local(LA, 2026, 12, 1, 9, 0), result=GateOutcome.PASS)  # exactly the length


@pytest.mark.parametrize("index", range(7))
def test_each_weekday(index: int) -> None:
    day = DAYS[index]
    monday = utc(2026, 11, 30)  # a Monday
    assert monday.weekday() == 0
    one_day = win("10:00", "11:00", days=(day,))
    opening = monday + timedelta(days=index, hours=10)
    check(one_day, 1800, monday, opening)
    check(one_day, 1800, opening + timedelta(minutes=30), result=GateOutcome.PASS)
    check(one_day, 1800, opening + timedelta(minutes=31), opening + timedelta(days=7))
    # The same in Asia/Kolkata (UTC+05:30): the opening is 04:30 UTC.
    kolkata = win("10:00", "11:00", days=(day,), tz="Asia/Kolkata")
    check(kolkata, 3600, monday, opening - timedelta(hours=5, minutes=30))


def test_southern_hemisphere_zone() -> None:
    sydney = "Australia/Sydney"
    window = win("09:00", "17:00", tz=sydney, name="syd")
    evaluation = check(window, 3600, local(sydney, 2026, 12, 1, 7, 0), local(sydney, 2026, 12, 1, 9, 0))
    assert "Tue 2026-12-01 09:00 AEDT (2026-11-30T22:00:00.000Z)" in evaluation.reason


# ---------------------------------------------------------------- DST


BERLIN = "Europe/Berlin"


def test_opening_in_the_spring_gap_opens_at_the_jump() -> None:
    # 2026-03-29, Berlin: 02:00 CET -> 03:00 CEST at 01:00Z. 02:30 does not exist.
    window = win("02:30", "04:00", days=("sun",), tz=BERLIN)
    evaluation = check(window, 3600, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0))
    assert "Sun 2026-03-29 03:00 CEST" in evaluation.reason
    assert evaluation.inputs["next"]["closes"] == "2026-03-29T02:00:00.000Z"  # 04:00 CEST: 60 real minutes
    # 90 written minutes, 60 real ones that day: a 61-minute bake waits a week.
    check(window, 3660, utc(2026, 3, 28, 12, 0), local(BERLIN, 2026, 4, 5, 2, 30))
    check(window, 5400, utc(2026, 3, 29, 1, 0), local(BERLIN, 2026, 4, 5, 2, 30))
    # A window wholly inside the gap does not open that day.
    check(win("02:00", "02:30", days=("sun",), tz=BERLIN), 0, utc(2026, 3, 28, 12, 0), local(BERLIN, 2026, 4, 5, 2, 0))
    # A close inside the gap closes at the jump.
    closes_in_gap = win("22:00", "02:30", days=("sat",), tz=BERLIN)
    # 22:00 CET (21:00Z) to the jump (01:00Z): 4 real hours of 4.5 written ones.
    evaluation = check(closes_in_gap, 4 * 3600, utc(2026, 3, 28, 21, 0), result=GateOutcome.PASS)
    assert evaluation.inputs["stretch"]["closes"] == "2026-03-29T01:00:00.000Z"
    assert evaluation.inputs["stretch"]["closes_local"] == "2026-03-29T03:00:00.000+02:00"
    check(closes_in_gap, 4 * 3600 + 1, utc(2026, 3, 28, 21, 0), local(BERLIN, 2026, 4, 4, 22, 0))


def test_repeated_hour_is_judged_by_the_wall_clock() -> None:
    # 2026-10-25, Berlin: 03:00 CEST -> 02:00 CET at 01:00Z; 02:00-02:59 shows twice.
    closes_in_repeat = win("22:00", "02:30", days=("sat",), tz=BERLIN)
    assert local(BERLIN, 2026, 10, 25, 2, 30, fold=0) == utc(2026, 10, 25, 0, 30)
    evaluation = check(closes_in_repeat, 1800, utc(2026, 10, 25, 0, 0), result=GateOutcome.PASS)
    assert evaluation.inputs["stretch"]["closes_local"] == "2026-10-25T02:30:00.000+02:00"
    # Closed between the first 02:30 (CEST) and the second 02:00 (CET), open again until the second 02:30.
    evaluation = check(closes_in_repeat, 1200, utc(2026, 10, 25, 0, 40), utc(2026, 10, 25, 1, 0))
    assert "it next opens with room for a bake of 20m on Sun 2026-10-25 02:00 CET" in evaluation.reason
    assert evaluation.inputs["next"]["closes_local"] == "2026-10-25T02:30:00.000+01:00"
    check(closes_in_repeat, 1200, utc(2026, 10, 25, 1, 10), result=GateOutcome.PASS)
    check(closes_in_repeat, 1801, utc(2026, 10, 25, 0, 40), local(BERLIN, 2026, 10, 31, 22, 0))
    # Spanning the repeated hour: 5 written hours, 6 real ones.
    night = win("22:00", "03:00", days=("sat",), tz=BERLIN)
    check(night, 5 * 3600, utc(2026, 10, 24, 21, 0), result=GateOutcome.PASS)  # 23:00 CEST + 5 h = 03:00 CET
    check(night, 5 * 3600, utc(2026, 10, 24, 21, 0, 1), local(BERLIN, 2026, 10, 31, 22, 0))
    # Opening inside the repeated hour: open from the first 02:30, closed while the clock shows the second
    # 02:00-02:29, open again from the second 02:30.
    opens_in_repeat = win("02:30", "05:00", days=("sun",), tz=BERLIN)
    check(opens_in_repeat, 1800, utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30))
    check(opens_in_repeat, 1801, utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 30))
    check(opens_in_repeat, 0, utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 1, 30))


def test_new_york_fall_back_both_passes_open() -> None:
    ny = "America/New_York"  # 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00Z
    window = win("01:00", "01:30", days=("sun",), tz=ny)
    check(window, 1800, utc(2026, 11, 1, 5, 0), result=GateOutcome.PASS)  # 01:00 EDT
    check(window, 1800, utc(2026, 11, 1, 5, 1), utc(2026, 11, 1, 6, 0))  # the second 01:00, EST
    check(window, 1800, utc(2026, 11, 1, 6, 1), local(ny, 2026, 11, 8, 1, 0))


def test_lord_howe_half_hour_change() -> None:
    lh = "Australia/Lord_Howe"  # 2026-10-04: 02:00 +1030 -> 02:30 +11 at 15:30Z (Oct 3)
    window = win("02:00", "03:00", days=("sun",), tz=lh)
    evaluation = check(window, 1800, utc(2026, 10, 3, 12, 0), utc(2026, 10, 3, 15, 30))
    assert evaluation.inputs["next"]["closes"] == "2026-10-03T16:00:00.000Z"
    check(window, 1860, utc(2026, 10, 3, 12, 0), local(lh, 2026, 10, 11, 2, 0))


def test_midnight_change_in_santiago() -> None:
    scl = "America/Santiago"  # 2026-09-06: Sunday starts at 01:00 (-03); 00:00-00:59 does not exist
    window = win("00:00", "02:00", days=("sun",), tz=scl)
    evaluation = check(window, 3600, utc(2026, 9, 5, 12, 0), local(scl, 2026, 9, 6, 1, 0))
    assert "Sun 2026-09-06 01:00 -03" in evaluation.reason
    check(window, 3601, utc(2026, 9, 5, 12, 0), local(scl, 2026, 9, 13, 0, 0))


# ---------------------------------------------------------------- limits and bad input


def test_nothing_within_the_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    never = WindowView("never", "UTC", (), 540, 1020)
    evaluation = check(never, 0, utc(2026, 12, 1))
    assert evaluation.reason == ("window never (UTC:  09:00-17:00) is closed at Tue 2026-12-01 00:00 UTC; it does not "
                                 "open with room for a bake of 0m within the next 14 days")
    monkeypatch.setattr(gate, "HORIZON", timedelta(days=2))
    check(win("09:00", "17:00"), 3600, utc(2026, 12, 4, 17, 0))  # Friday evening: Monday is too far
    check(win("09:00", "17:00"), 3600, utc(2026, 12, 5, 9, 0), utc(2026, 12, 7, 9, 0))  # exactly at the horizon


def test_bad_input() -> None:
    with pytest.raises(InvalidValue):
        gate.evaluate(BUSINESS, 60, now=datetime(2026, 12, 1, 9, 0))
    with pytest.raises(InvalidValue):
        gate.evaluate(BUSINESS, -1, now=utc(2026, 12, 1))
    with pytest.raises(InvalidValue):
        gate.next_fit(BUSINESS, True, utc(2026, 12, 1))
    with pytest.raises(InvalidValue, match="Mars/Olympus"):
        gate.evaluate(win("09:00", "17:00", tz="Mars/Olympus"), 0, now=utc(2026, 12, 1))


def test_now_in_another_zone_is_the_same_instant() -> None:
    now = local(LA, 2026, 12, 1, 8, 0)
    assert gate.next_fit(BUSINESS, 0, now.astimezone(ZoneInfo("Asia/Tokyo"))) == local(LA, 2026, 12, 1, 9, 0)
    assert gate.next_fit(BUSINESS, 0, now.astimezone(ZoneInfo("Asia/Tokyo"))).tzinfo is UTC  # type: ignore[union-attr]


# ---------------------------------------------------------------- against a minute-by-minute walk


def reference_fit(window: WindowView, bake_seconds: int, now: datetime) -> datetime | None:
    """Walk forward one UTC minute at a time from the minute holding `now`, reading the wall clock
    of the window's zone (`is_open_at`); the first instant >= now that is inside with the whole bake
    inside after it. Every boundary of the window falls on a whole UTC minute in these zones, so a
    minute is wholly inside or wholly outside."""
    zone = ZoneInfo(window.timezone)
    bake = timedelta(seconds=bake_seconds)
    latest = now + gate.HORIZON
    minute = now.replace(second=0, microsecond=0)
    candidate: datetime | None = None
    while True:
        wall = minute.astimezone(zone)
        if window.is_open_at(DAYS[wall.weekday()], wall.hour * 60 + wall.minute):
            if candidate is None:
                candidate = max(minute, now)
                if candidate > latest:
                    return None
            if candidate + bake <= minute + MINUTE:
                return candidate
        else:
            candidate = None
            if minute > latest:
                return None
        minute += MINUTE


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """UTC instants (to the hour) where the zone's offset changes, 2025-2030."""
    zone = ZoneInfo(zone_name)
    found: list[datetime] = []
    moment = utc(2025, 1, 1)
    previous = moment.astimezone(zone).utcoffset()
    while moment < utc(2031, 1, 1):
        moment += timedelta(hours=1)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(moment)
            previous = offset
    return tuple(found)


DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago")
# Minutes near the changes of these zones (00:00 in Santiago, 01:30-03:00 elsewhere), and any minute.
NEAR = st.sampled_from([0, 30, 60, 90, 100, 120, 135, 150, 180, 210, 1380, 1410, 1439])
minutes = st.one_of(NEAR, st.integers(0, 1439))
day_sets = st.sets(st.sampled_from(DAYS), min_size=1).map(lambda days: tuple(d for d in DAYS if d in days))
bakes = st.one_of(st.just(0), st.sampled_from([1800, 3600, 5400, 7200]), st.integers(0, 6 * 3600))


@st.composite
def dst_cases(draw: st.DrawFn) -> tuple[WindowView, int, datetime]:
    zone = draw(st.sampled_from(DST_ZONES))
    window = WindowView("w", zone, draw(day_sets), draw(minutes), draw(minutes))
    change = draw(st.sampled_from(transitions(zone)))
    now = change + timedelta(seconds=draw(st.integers(-3 * 86400, 86400)), microseconds=draw(st.integers(0, 999999)))
    return window, draw(bakes), now


def agrees(window: WindowView, bake: int, now: datetime) -> None:
    evaluation = gate.evaluate(window, bake, now=now)
    if bake > window.length_minutes * 60:
        assert evaluation.code == "window_too_short"
        assert gate.next_fit(window, bake, now) is None
        return
    expected = reference_fit(window, bake, now)
    assert gate.next_fit(window, bake, now) == expected
    if expected == now:
        assert evaluation.passed, evaluation.reason
    else:
        assert evaluation.waiting and evaluation.code == "window_closed", evaluation.reason
        assert evaluation.until == expected
    json.dumps(dict(evaluation.inputs))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dst_cases())
def test_matches_the_minute_walk_across_dst_changes(case: tuple[WindowView, int, datetime]) -> None:
    agrees(*case)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone=st.sampled_from(("UTC", "Asia/Kolkata", "America/Los_Angeles", "Australia/Lord_Howe")),
       days=day_sets, start=minutes, end=minutes, bake=bakes,
       now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)))
def test_matches_the_minute_walk_any_time(zone: str, days: tuple[str, ...], start: int, end: int, bake: int,
                                          now: datetime) -> None:
    agrees(WindowView("w", zone, days, start, end), bake, now)
