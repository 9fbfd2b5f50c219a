"""`paused`: the pipeline is not paused (engine.md: `pause` closes every stage's entry)."""

from __future__ import annotations

from datetime import datetime

from pipewarden.engine.domain.gates.base import PASS, WAIT, GateResult, clock

NAME = "paused"


def evaluate(paused: bool, *, now: datetime, by: str | None = None, reason: str | None = None) -> GateResult:
    """PASS when the pipeline is not paused; else WAIT `paused` (until a person resumes it)."""
    inputs = {**clock(now), "paused": paused}
    if not paused:
        return PASS("the pipeline is not paused", inputs=inputs)
    who = f" by {by}" if by else ""
    why = f": {reason}" if reason else ""
    return WAIT("paused", f"the pipeline is paused{who}{why}", inputs={**inputs, "by": by, "reason": reason})
