"""Execution ids, artifact ids, commits and times as engine.md writes them.

- An execution id is `PIPELINE-N`, N counting from 1 per pipeline in creation order. Pipeline
  names may hold `-` and digits themselves (`^[a-z0-9][a-z0-9-]{0,62}$`), so N is what follows
  the *last* `-`: `shop-2-17` is execution 17 of pipeline `shop-2`.
- An artifact id is the first 12 hex digits of its commit; commits are full 40-hex names.
- Times are ISO 8601 in UTC with millisecond precision and `Z`: `2026-12-01T15:04:00.125Z`.
  That text has a fixed width, so comparing two of them as strings compares the times (the
  store keeps times as this text for that reason, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pipewarden.engine.domain.errors import InvalidValue

_PIPELINE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_EXECUTION = re.compile(r"([a-z0-9][a-z0-9-]{0,62})-([1-9][0-9]*)")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_ARTIFACT = re.compile(r"[0-9a-f]{12}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")

ZERO_HASH = "0" * 64
"""The `prev_hash` of the first event of the audit chain."""


def check_pipeline_name(name: str) -> str:
    """`name` when it is a valid pipeline name (pipeline.md's `metadata.name`), else InvalidValue."""
    if not isinstance(name, str) or _PIPELINE.fullmatch(name) is None:
        raise InvalidValue(f"bad pipeline name {name!r}: lower-case letters, digits and '-', at most 63")
    return name


def execution_id(pipeline: str, number: int) -> str:
    """`PIPELINE-N` for the N-th execution (N >= 1) of `pipeline`."""
    check_pipeline_name(pipeline)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidValue(f"bad execution number {number!r}: executions count from 1")
    return f"{pipeline}-{number}"


def parse_execution_id(text: str) -> tuple[str, int]:
    """(pipeline, N) of an execution id; InvalidValue when `text` is not `PIPELINE-N`."""
    match = _EXECUTION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidValue(f"bad execution id {text!r}: expected PIPELINE-N, such as release-demo-7")
    return match.group(1), int(match.group(2))


def check_commit(commit: str) -> str:
    """`commit` when it is a full 40-hex commit name (lower case), else InvalidValue."""
    if not isinstance(commit, str) or _COMMIT.fullmatch(commit) is None:
        raise InvalidValue(f"bad commit {commit!r}: expected the full 40-hex name")
    return commit


def artifact_id(commit: str) -> str:
    """The artifact id of a commit: its first 12 hex digits."""
    return check_commit(commit)[:12]


def check_artifact_id(artifact: str) -> str:
    """`artifact` when it is 12 lower-case hex digits, else InvalidValue."""
    if not isinstance(artifact, str) or _ARTIFACT.fullmatch(artifact) is None:
        raise InvalidValue(f"bad artifact id {artifact!r}: expected 12 hex digits")
    return artifact


def _aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValue(f"a time must carry its offset (UTC), not {moment!r}")
    return moment.astimezone(UTC)


def truncate_ms(moment: datetime) -> datetime:
    """`moment` in UTC, cut (not rounded) to the millisecond: what `format_time` writes.

    Cutting keeps a time inside its second (rounding 59.9996 s would carry into the next minute)
    and makes `parse_time(format_time(t)) == truncate_ms(t)`.
    """
    utc = _aware(moment)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def format_time(moment: datetime) -> str:
    """`2026-12-01T15:04:00.125Z`: UTC, milliseconds, `Z`. An aware datetime is required."""
    utc = truncate_ms(moment)
    # Written field by field: strftime's %Y does not pad years below 1000 on every platform.
    return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
            f".{utc.microsecond // 1000:03d}Z")


def format_optional_time(moment: datetime | None) -> str | None:
    """`format_time`, None for None (an unknown `until`)."""
    return None if moment is None else format_time(moment)


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a time written by `format_time` (exactly that form)."""
    if not isinstance(text, str) or _TIME.fullmatch(text) is None:
        raise InvalidValue(f"bad time {text!r}: expected UTC with milliseconds, such as 2026-12-01T15:04:00.125Z")
    try:
        return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                        int(text[17:19]), int(text[20:23]) * 1000, tzinfo=UTC)
    except ValueError:
        raise InvalidValue(f"bad time {text!r}: not a date and time of the calendar") from None


def is_time(text: object) -> bool:
    """True when `text` is a time as `format_time` writes it."""
    if not isinstance(text, str):
        return False
    try:
        parse_time(text)
    except InvalidValue:
        return False
    return True


def parse_since(text: str) -> datetime:
    """A user's ISO 8601 time (`events --since`): any form `datetime.fromisoformat` reads, with
    `Z` or an offset; a time without an offset is read as UTC (the engine's one time zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidValue(f"bad time {text!r}: expected ISO 8601, such as 2026-12-01T15:04:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def seconds_between(earlier: datetime, later: datetime) -> float:
    """Elapsed seconds from `earlier` to `later` (negative when `later` is before)."""
    return (_aware(later) - _aware(earlier)) / timedelta(seconds=1)
