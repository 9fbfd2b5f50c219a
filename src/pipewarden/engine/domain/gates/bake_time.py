"""`bake_time`: `bake.duration` has elapsed since the tests passed (engine.md, "Bake").

The bake's optional `bake.deadline` (a duration from the bake's start) is judged here too: a bake
still waiting at its deadline fails with code `deadline`. With datapoints (issue 14) the bake
waits for both gates; the workflow then applies the deadline to the bake as a whole with
`deadline_passed`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipewarden.engine.domain.gates.base import FAIL, PASS, WAIT, GateResult, clock
from pipewarden.engine.domain.ids import format_time, seconds_between

NAME = "bake_time"


def evaluate(started: datetime | None, duration_seconds: int, *, now: datetime,
             deadline_seconds: int | None = None) -> GateResult:
    """PASS once `duration_seconds` have elapsed since `started`; WAIT `baking` with `until` =
    start + duration before; WAIT `bake_not_started` without a start (no data is never a pass);
    FAIL `deadline` when the deadline came first."""
    inputs: dict[str, object] = {**clock(now), "duration_s": duration_seconds, "deadline_s": deadline_seconds}
    if started is None:
        return WAIT("bake_not_started", "the bake has not started", inputs=inputs)
    until = started + timedelta(seconds=duration_seconds)
    inputs["started"] = format_time(started)
    if now >= until:
        return PASS(f"baked {_span(duration_seconds, duration_seconds)}", inputs=inputs)
    if deadline_passed(started, deadline_seconds, now):
        return FAIL("deadline", f"the bake still waits at its deadline of {_span(deadline_seconds or 0, deadline_seconds or 0)} "
                    f"(bake {_span(duration_seconds, duration_seconds)})", inputs=inputs)
    elapsed = max(0, int(seconds_between(started, now)))
    return WAIT("baking", f"baking {_span(elapsed, duration_seconds)} of {_span(duration_seconds, duration_seconds)}",
                until=until, inputs=inputs)


def deadline_passed(started: datetime, deadline_seconds: int | None, now: datetime) -> bool:
    """True when the bake has a deadline and `now` is at or after start + deadline."""
    return deadline_seconds is not None and now >= started + timedelta(seconds=deadline_seconds)


def _span(seconds: int, scale: int) -> str:
    """`seconds` in the unit `scale` reads best in: minutes for whole-minute durations of at least
    two minutes (`baking 12m of 60m`), else seconds; elapsed time is cut, never rounded up."""
    if scale >= 120 and scale % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
