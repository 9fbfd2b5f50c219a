"""Durations in seconds and clock times in minutes: the Python reading of what pipelines write.

The pipeline format writes durations as `<int><unit>` (`90m`, `1h`, `2d`, `0s`) and window times
as `HH:MM`. The built-in rules read them in Rego (`policies/lib/core.rego`: `duration_seconds`,
`minutes`, `interval_pieces`, `pieces_within`); the release engine reads them here. The two
readings are held equal by a differential property test (tests/test_model_view.py).

Minutes of the day are integers in [0, 1440); a daily interval is a tuple of pieces
`(a, b)`, each the half-open minutes [a, b) with 0 <= a < b <= 1440.
"""

from __future__ import annotations

import re

MINUTES_PER_DAY = 1440

# Seconds per unit of a duration.
UNIT_SECONDS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# ASCII digits only: str.isdigit() and int() would also take other scripts' digits ("٣").
_DURATION = re.compile(r"([0-9]+)([smhd])")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")

Piece = tuple[int, int]


def duration_seconds(text: str) -> int:
    """Seconds of a duration `<int><unit>`, unit one of `s m h d`: `"90m"` -> 5400, `"0m"` -> 0.

    Leading zeros are allowed (`"007s"` is 7 s) and the value is exact however large. Raises
    ValueError for anything else (no sign, no fraction, no spaces, lower-case units only).
    """
    # A non-string (YAML `90` or `1.5`) is bad input like any other: one error type for callers.
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"bad duration {text!r}: write <digits><unit> with unit s, m, h or d, such as '90m'")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def clock_minutes(text: str) -> int:
    """Minute of the day of a clock time `HH:MM` (24 h; `H:MM` also taken): `"09:00"` -> 540.

    Raises ValueError for anything else, and for hours above 23 or minutes above 59 (the Rego
    reading `core.minutes` does no range check: `"24:00"` is 1440 there; the schema never lets
    such a time through to either).
    """
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"bad clock time {text!r}: write HH:MM, such as '09:00'")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad clock time {text!r}: hours run 00-23 and minutes 00-59")
    return hours * 60 + minutes


def interval_pieces(start: int, end: int) -> tuple[Piece, ...]:
    """The minutes [start, end) of a daily interval as sorted, non-empty pieces within [0, 1440).

    Wraps past midnight when end < start (`(1320, 360)` -> `((0, 360), (1320, 1440))`) and covers
    the whole day when start == end: as `core.rego`'s `interval_pieces`. `start` and `end` are
    minutes of the day (0-1439); raises ValueError outside that range.
    """
    for value in (start, end):
        if not 0 <= value < MINUTES_PER_DAY:
            raise ValueError(f"minute of the day out of range: {value} (0-1439)")
    if start == end:
        return ((0, MINUTES_PER_DAY),)
    if start < end:
        return ((start, end),)
    # start > end >= 0, so (start, 1440) is never empty; (0, end) is empty when end is midnight.
    if end == 0:
        return ((start, MINUTES_PER_DAY),)
    return ((0, end), (start, MINUTES_PER_DAY))


def pieces_within(inner: tuple[Piece, ...], outer: tuple[Piece, ...]) -> bool:
    """True when every minute of `inner` lies in `outer` (both as `interval_pieces` returns them).

    The pieces of one interval are never adjacent (a wrapped interval leaves a gap between its
    two pieces), so a piece inside their union lies inside one of them.
    """
    return all(any(a <= p and q <= b for a, b in outer) for p, q in inner)


def pieces_length(pieces: tuple[Piece, ...]) -> int:
    """How many minutes of the day the pieces cover (1440 for a whole-day interval)."""
    return sum(b - a for a, b in pieces)
