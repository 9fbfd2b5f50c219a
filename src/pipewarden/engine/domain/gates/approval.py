"""`approval`: every approval the stage names was given for this execution (engine.md).

Also the decisions around `approve ID --stage S [--approval NAME]`: which approval a command
means, and that giving one twice is refused.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.domain.gates.base import PASS, WAIT, GateResult, clock

NAME = "approval"


def evaluate(required: Sequence[str], given: Collection[str], *, now: datetime) -> GateResult:
    """PASS when every name in `required` (the stage's `approvals`, in order) is in `given`;
    else WAIT `approval_missing` naming the missing ones (no `until`: a person decides)."""
    missing = [name for name in required if name not in given]
    inputs = {**clock(now), "required": list(required), "given": sorted(set(given) & set(required))}
    if not missing:
        return PASS("every approval given" if required else "no approval needed", inputs=inputs)
    return WAIT("approval_missing", f"waiting for approval: {', '.join(missing)}", inputs=inputs)


def approval_to_give(required: Sequence[str], given: Collection[str], name: str | None) -> str:
    """The approval an `approve` command gives: `name`, or the stage's only approval. Refused when
    the stage has none, when `name` is needed (several approvals) or unknown, or already given."""
    if not required:
        raise Refused("approve", "the stage has no approvals")
    if name is None:
        if len(required) > 1:
            raise Refused("approve", f"the stage has several approvals, name one with --approval: {', '.join(required)}")
        name = required[0]
    if name not in required:
        raise Refused("approve", f"the stage has no approval {name!r}: {', '.join(required)}")
    if name in given:
        raise Refused("approve", f"approval {name!r} was already given")
    return name
