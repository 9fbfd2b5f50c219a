"""`datapoints`: the bake waits for enough good events and fails on bad ones (engine.md, "Gates").

Counted since the deploy finished (the sources expand `$__since_deploy` and `PIPEWARDEN_SINCE`):

| observations | result | code |
|---|---|---|
| negative `> max_negative` (whatever positive says) | FAIL | `negative_datapoints` |
| positive or negative a source error | WAIT | `source_error` (`synthetic_silent` for a silent synthetic) |
| positive no data | WAIT | `insufficient_data` |
| positive `>= min_positive` and negative `<= max_negative` | PASS | `ok` |
| otherwise | WAIT | `insufficient_data` |

A negative count above `max_negative` is a fact whatever the positive side says, so it fails at
once even while the positive query errs (availability first); the workflow then rolls back with
trigger `datapoints` when the stage's rollback is automatic. **No data is never a pass**: an empty
positive result waits, even with `min_positive: 0`. The negative side counts 0 when the stage has
no `negative` reference, and when its result is empty once the positive query has data (a healthy
service has no error series). The reason always shows both counts, the thresholds and what is
missing: `1204 positive of 3000, 0 negative of at most 0: 1796 more positive needed`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipewarden.engine.domain.gates.base import FAIL, PASS, WAIT, GateResult, clock
from pipewarden.engine.domain.gates.metrics import Observation, number

NAME = "datapoints"
NEGATIVE = "negative_datapoints"
INSUFFICIENT = "insufficient_data"


def evaluate(positive: Observation, negative: Observation | None, min_positive: int, max_negative: int, *,
             now: datetime) -> GateResult:
    """Judge one reading of each side (`negative` None: the stage has no `negative` reference)."""
    inputs: dict[str, Any] = {
        **clock(now),
        "positive": positive.to_json(),
        "negative": None if negative is None else negative.to_json(),
        "min_positive": min_positive,
        "max_negative": max_negative,
    }
    bad = negative.value if negative is not None else None
    if bad is not None and bad > max_negative:
        seen = "no positive data" if positive.value is None else f"{number(positive.value)} positive of {min_positive}"
        return FAIL(NEGATIVE, f"{number(bad)} negative of at most {max_negative} ({seen})", inputs=inputs)
    for side, observation in (("positive", positive), ("negative", negative)):
        if observation is not None and observation.error is not None:
            code = observation.code or "source_error"
            return WAIT(code, f"the {side} query cannot be read: {observation.error}", inputs=inputs)
    counted_bad = 0.0 if bad is None else bad
    limits = f"{number(counted_bad)} negative of at most {max_negative}"
    if positive.value is None:
        return WAIT(INSUFFICIENT, f"no positive data yet (of {min_positive}), {limits}", inputs=inputs)
    good = positive.value
    if good >= min_positive:
        return PASS(f"{number(good)} positive of {min_positive}, {limits}", inputs=inputs)
    missing = min_positive - good
    return WAIT(INSUFFICIENT, f"{number(good)} positive of {min_positive}, {limits}: "
                f"{number(missing)} more positive needed", inputs=inputs)
