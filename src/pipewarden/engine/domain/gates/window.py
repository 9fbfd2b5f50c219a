"""`window`: a stage starts only when its deployment window is open and its bake fits before the
window closes (engine.md, "Gates"; issue 14).

What is open. A window opens on each of its `days` at `start` and closes `length` minutes later
(rules.md: the next day when `end` is before `start`, a whole day later when they are equal), all
read as wall time in the window's timezone: `WindowView.is_open_at`. An instant is *inside* the
window when the wall clock of the timezone shows, at that instant, a weekday and minute that
`is_open_at` accepts. An *open stretch* is a maximal run of real time whose instants are all
inside, so occurrences that touch (Mon 09:00-24:00 and Tue 00:00-05:00; whole-day windows on
consecutive days) are one stretch; its *close* is the first instant after it that is not inside.

When it passes. The gate passes at `now` when `now` is inside and `now + bake` (real elapsed
seconds) is at or before the close of `now`'s stretch. Otherwise it waits with code
`window_closed` and `until` = `next_fit(...)`: the earliest later instant at which both hold,
always the opening of a stretch, since within one stretch the room left only shrinks. It fails
with `window_too_short` when the bake is longer than the window's written length
(`WindowView.length_minutes`, whatever a DST change does to one occurrence, and even where
touching occurrences would make a longer stretch, as engine.md says): such a bake can never pass,
and `next_fit` answers None for it.

Daylight saving time: the clock on the wall decides, nothing else.
- A wall time that does not exist (spring forward: Berlin's 02:00-02:59 on the last Sunday of
  March) never shows, so it is never inside. An occurrence that opens in the gap opens at the
  jump (the first instant after the gap, 03:00 CEST); one that closes in the gap closes at the
  jump; one wholly inside the gap does not open that day. Such an occurrence is shorter in real
  time than written, so a bake that fits its written length may wait a week for a full one.
- A wall time that exists twice (fall back: Berlin's 02:00-02:59 on the last Sunday of October,
  zoneinfo's `fold=0` in CEST, then `fold=1` in CET) is judged by its wall time alone, `fold`
  ignored: both passes are inside or both outside. An occurrence spanning the repeated hour is
  longer in real time than written; one whose boundary lies in the repeated hour is inside during
  that part of each pass: a window closing at 02:30 that night is open until the first 02:30,
  closed for 30 minutes, and open again from the second 02:00 until the second 02:30 (which is
  then its close). Its opening then is the second 02:00, a valid `until`.
- Zones whose clocks change at midnight (America/Santiago) follow the same rule: a day that
  starts at 01:00 opens its 00:00 window at 01:00.
Reading "inside" from the wall clock is what engine.md asks ("now, read as wall time in the
window's timezone"), and it needs no rule for choosing between two instants of one wall time.

Horizon: `next_fit` looks for an opening up to `HORIZON` (14 days) after `now`. A bake no longer
than the window's written length normally fits within 7 days; the second week covers an
occurrence cut short by a DST change (or a day a zone skipped). A window that does not open
with room for the bake within the horizon waits with `until` None and a reason that says so;
the workflow then polls.

How it is computed (no minute-by-minute walk): the zone's UTC offset is constant between
transitions, found by sampling the offset every 6 hours over the span looked at and bisecting to
the second (tzdata's offsets never change twice within a week); on each constant-offset segment the
inside instants are the window's occurrences (as naive local datetimes, touching ones merged)
shifted by that offset. A property test holds this equal to a minute-by-minute walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.gates.base import FAIL, PASS, WAIT, GateResult, clock
from pipewarden.engine.domain.ids import format_time
from pipewarden.model.view import DAYS, WindowView

NAME = "window"

HORIZON = timedelta(days=14)
"""How far after `now` `next_fit` looks for an opening with room for the bake."""

# Offsets are sampled this often, then bisected to the second. Since 1990, tzdata (2026f) never
# changes a zone's offset twice within 167 hours, so two changes cannot hide between two samples.
_SAMPLE = timedelta(hours=6)
_BEFORE = timedelta(days=8)  # looked at before `now`: a bounded stretch lasts less than 7 days + DST
_AFTER = timedelta(days=2)  # looked at beyond `now + HORIZON + bake`


@dataclass(frozen=True, slots=True)
class Stretch:
    """One open stretch in UTC, [opens, closes). `opens` is None when the stretch was already open
    at the start of the span looked at (8 days before now: a window open all week), `closes` None
    when it is still open at its end (it closes, if ever, long after any bake)."""

    opens: datetime | None
    closes: datetime | None

    def contains(self, moment: datetime) -> bool:
        return (self.opens is None or self.opens <= moment) and (self.closes is None or moment < self.closes)


def evaluate(window: WindowView, bake_seconds: int, *, now: datetime) -> GateResult:
    """PASS when `now` is inside `window` and a bake of `bake_seconds` started now ends at or before
    the close of its open stretch; WAIT `window_closed` with `until` = `next_fit(...)` (None when
    nothing fits within `HORIZON`); FAIL `window_too_short` when the bake is longer than the
    window's written length. Inputs: the window, its definition and timezone, the bake, now in UTC
    and local time, the stretch holding now (`stretch`, null when closed) and, when waiting, the
    stretch `until` opens (`next`)."""
    zone = _zone(window)
    _check(bake_seconds, now)
    now = now.astimezone(UTC)
    local_now = now.astimezone(zone)
    inputs: dict[str, Any] = {
        **clock(now), "now_local": _iso_local(local_now), "window": window.name,
        "definition": {"days": list(window.days), "start": _hhmm(window.start_minute), "end": _hhmm(window.end_minute)},
        "timezone": window.timezone, "length_minutes": window.length_minutes, "bake_s": bake_seconds,
    }
    named = f"window {window.name} ({window.timezone}: {_definition(window)})"
    if bake_seconds > window.length_minutes * 60:
        return FAIL("window_too_short", f"{named} is open {_span(window.length_minutes * 60)} at a time; "
                    f"a bake of {_span(bake_seconds)} can never finish inside it", inputs=inputs)
    stretches = _stretches(window, zone, now, bake_seconds)
    current = next((stretch for stretch in stretches if stretch.contains(now)), None)
    inputs["stretch"] = _stretch_json(current, zone)
    fit, fitting = _first_fit(stretches, bake_seconds, now)
    if fit == now:
        until = f"until {_local(current.closes, zone)}" if current is not None and current.closes is not None \
            else f"for more than {HORIZON.days} days"
        return PASS(f"{named} is open at {_local(now, zone)} {until}: room for a bake of {_span(bake_seconds)}",
                    inputs=inputs)
    inputs["next"] = _stretch_json(fitting, zone)
    if current is not None and current.closes is not None:
        state = (f"closes {_local(current.closes, zone)}, before a bake of {_span(bake_seconds)} "
                 f"started at {_local(now, zone)} would end")
    else:
        state = f"is closed at {_local(now, zone)}"
    if fit is None:
        return WAIT("window_closed", f"{named} {state}; it does not open with room for a bake of "
                    f"{_span(bake_seconds)} within the next {HORIZON.days} days", inputs=inputs)
    return WAIT("window_closed", f"{named} {state}; it next opens with room for a bake of {_span(bake_seconds)} on "
                f"{_local(fit, zone)} ({format_time(fit)})", until=fit, inputs=inputs)


def next_fit(window: WindowView, bake_seconds: int, now: datetime) -> datetime | None:
    """The earliest instant at or after `now` at which `window` is open and a bake of
    `bake_seconds` started then ends at or before its stretch's close (in UTC): `now` itself when
    the gate passes now, else the `until` of its WAIT. None when nothing fits within `HORIZON`
    of `now`, and always when the bake is longer than the window's written length."""
    zone = _zone(window)
    _check(bake_seconds, now)
    if bake_seconds > window.length_minutes * 60:
        return None
    now = now.astimezone(UTC)
    return _first_fit(_stretches(window, zone, now, bake_seconds), bake_seconds, now)[0]


# ---------------------------------------------------------------- arithmetic


def _first_fit(stretches: list[Stretch], bake_seconds: int, now: datetime) -> tuple[datetime | None, Stretch | None]:
    """The earliest instant >= now inside one of `stretches` (sorted) with room for the bake, and
    that stretch; within a stretch the earliest instant has the most room, so only openings (or
    now) are candidates."""
    bake = timedelta(seconds=bake_seconds)
    latest = now + HORIZON
    for stretch in stretches:
        if stretch.closes is not None and stretch.closes <= now:
            continue
        start = now if stretch.opens is None or stretch.opens < now else stretch.opens
        if start > latest:
            break
        if stretch.closes is None or start + bake <= stretch.closes:
            return start, stretch
    return None, None


def _stretches(window: WindowView, zone: ZoneInfo, now: datetime, bake_seconds: int) -> list[Stretch]:
    """The open stretches meeting [now - 8 days, now + HORIZON + bake + 2 days], sorted; those
    cut by either end of that span have that end None."""
    low = _floor_minute(now) - _BEFORE
    high = _floor_minute(now) + HORIZON + timedelta(seconds=bake_seconds) + _AFTER
    occurrences = _occurrences(window, (low - _AFTER).astimezone(zone).date(), (high + _AFTER).astimezone(zone).date())
    pieces: list[tuple[datetime, datetime]] = []
    for seg_start, seg_end, offset in _segments(zone, low, high):
        for opens, closes in occurrences:
            a = max(seg_start, (opens - offset).replace(tzinfo=UTC))
            b = min(seg_end, (closes - offset).replace(tzinfo=UTC))
            if a < b:
                pieces.append((a, b))
    pieces.sort()
    merged: list[list[datetime]] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:  # touching or overlapping: one stretch
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [Stretch(None if a <= low else a, None if b >= high else b) for a, b in merged]


def _occurrences(window: WindowView, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The window's occurrences opening on local dates first..last as naive local datetimes
    [opens, closes), touching or overlapping ones merged, sorted."""
    length = timedelta(minutes=window.length_minutes)
    merged: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if DAYS[day.weekday()] in window.days:
            opens = datetime.combine(day, time()) + timedelta(minutes=window.start_minute)
            closes = opens + length
            if merged and opens <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
            else:
                merged.append((opens, closes))
        day += timedelta(days=1)
    return merged


def _segments(zone: ZoneInfo, low: datetime, high: datetime) -> list[tuple[datetime, datetime, timedelta]]:
    """[start, end) spans of UTC covering [low, high) on which `zone`'s UTC offset is constant,
    with that offset. `low` is a whole second; transitions are found to the second."""
    segments: list[tuple[datetime, datetime, timedelta]] = []
    start, offset = low, _offset(zone, low)
    probe = low
    while probe < high:
        after = min(probe + _SAMPLE, high)
        later = _offset(zone, after)
        if later != offset:
            # Bisect (probe, after] for the first second with the new offset.
            lo_s, hi_s = 0, int((after - probe).total_seconds())
            while hi_s - lo_s > 1:
                mid = (lo_s + hi_s) // 2
                if _offset(zone, probe + timedelta(seconds=mid)) == offset:
                    lo_s = mid
                else:
                    hi_s = mid
            change = probe + timedelta(seconds=hi_s)
            segments.append((start, change, offset))
            start, offset = change, later
        probe = after
    segments.append((start, high, offset))
    return segments


def _offset(zone: ZoneInfo, moment: datetime) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always answers for an aware datetime
    return offset


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _zone(window: WindowView) -> ZoneInfo:
    try:
        return ZoneInfo(window.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidValue(f"window {window.name!r} has the unknown timezone {window.timezone!r}") from None


def _check(bake_seconds: int, now: datetime) -> None:
    if isinstance(bake_seconds, bool) or not isinstance(bake_seconds, int) or bake_seconds < 0:
        raise InvalidValue(f"a bake is a whole number of seconds >= 0, not {bake_seconds!r}")
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidValue(f"a time must carry its offset (UTC), not {now!r}")


# ---------------------------------------------------------------- words


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _definition(window: WindowView) -> str:
    return f"{','.join(window.days)} {_hhmm(window.start_minute)}-{_hhmm(window.end_minute)}"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    """`Mon 2026-12-07 09:00 PST`: wall time in the window's zone, with the zone's abbreviation
    (which tells the two passes of a repeated hour apart); seconds only when not whole minutes."""
    local = moment.astimezone(zone)
    text = f"{local:%a %Y-%m-%d %H:%M}"
    if local.second or local.microsecond:
        text += f":{local.second:02d}"
    return f"{text} {local.tzname()}"


def _iso_local(local: datetime) -> str:
    return local.isoformat(timespec="milliseconds")


def _stretch_json(stretch: Stretch | None, zone: ZoneInfo) -> dict[str, Any] | None:
    if stretch is None:
        return None
    return {
        "opens": None if stretch.opens is None else format_time(stretch.opens),
        "closes": None if stretch.closes is None else format_time(stretch.closes),
        "opens_local": None if stretch.opens is None else _iso_local(stretch.opens.astimezone(zone)),
        "closes_local": None if stretch.closes is None else _iso_local(stretch.closes.astimezone(zone)),
    }


def _span(seconds: int) -> str:
    """`90m` for whole minutes (as bake_time writes them), else `75s`."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
