"""The one gate interface: an evaluation is PASS, WAIT or FAIL with a code, a reason, an `until`
and the inputs it judged (engine.md, "Gates").

Gates are pure functions of observations and a clock (ARCHITECTURE.md habit 3): each gate module
has `NAME` and `evaluate(..., now) -> GateResult`; activities gather the observations, workflows
sequence the gates. A gate that lacks data answers WAIT, never PASS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipewarden.engine.domain.canonical import CanonicalError, canonical_json
from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.ids import format_optional_time, format_time, truncate_ms

OK = "ok"
"""The code of every passing gate."""


class GateOutcome(StrEnum):
    PASS = "pass"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class GateResult:
    """One evaluation of one gate.

    `until` is the earliest time the gate can pass when known (WAIT only; None otherwise), in UTC
    and cut to the millisecond as events write it. `inputs` is what the gate judged (observed
    values, thresholds, the clock): a JSON object, written into the `gate` event.
    """

    result: GateOutcome
    code: str
    reason: str
    until: datetime | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.code or not isinstance(self.code, str):
            raise InvalidValue("a gate result needs a code")
        if (self.result is GateOutcome.PASS) != (self.code == OK):
            raise InvalidValue(f"a passing gate has code {OK!r} and only a passing one: {self.result} {self.code}")
        if self.until is not None:
            if self.result is not GateOutcome.WAIT:
                raise InvalidValue("only a waiting gate has an `until`")
            object.__setattr__(self, "until", truncate_ms(self.until))
        try:
            canonical_json(dict(self.inputs))  # inputs must be JSON: checked when made, not when written
        except CanonicalError as error:
            raise InvalidValue(f"gate inputs are not JSON: {error}") from None

    @property
    def passed(self) -> bool:
        return self.result is GateOutcome.PASS

    @property
    def waiting(self) -> bool:
        return self.result is GateOutcome.WAIT

    @property
    def failed(self) -> bool:
        return self.result is GateOutcome.FAIL

    def to_json(self, gate: str) -> dict[str, Any]:
        """The gate object of `status`: exactly `gate`, `result`, `code`, `reason`, `until`."""
        return {
            "gate": gate,
            "result": str(self.result),
            "code": self.code,
            "reason": self.reason,
            "until": format_optional_time(self.until),
        }

    def event_data(self, gate: str) -> dict[str, Any]:
        """The `data` of this evaluation's `gate` event."""
        return {**self.to_json(gate), "inputs": dict(self.inputs)}


def PASS(reason: str = "", inputs: Mapping[str, Any] | None = None) -> GateResult:
    """A passing evaluation (code `ok`)."""
    return GateResult(GateOutcome.PASS, OK, reason, None, dict(inputs or {}))


def WAIT(code: str, reason: str, until: datetime | None = None,
         inputs: Mapping[str, Any] | None = None) -> GateResult:
    """A gate that cannot pass yet; `until` the earliest time it can, when known."""
    return GateResult(GateOutcome.WAIT, code, reason, until, dict(inputs or {}))


def FAIL(code: str, reason: str, inputs: Mapping[str, Any] | None = None) -> GateResult:
    """A gate that will not pass for this execution (the stage run fails)."""
    return GateResult(GateOutcome.FAIL, code, reason, None, dict(inputs or {}))


def clock(now: datetime) -> dict[str, str]:
    """The `now` input every gate records."""
    return {"now": format_time(now)}


def event_needed(previous: GateResult | None, current: GateResult) -> bool:
    """True when a `gate` event is due: the first evaluation in a stage run, or a change of
    `result` or `code` (not a counter changing inside the reason, nor new inputs)."""
    return outcome_changed(None if previous is None else (str(previous.result), previous.code), current)


def outcome_changed(previous: tuple[str, str] | None, current: GateResult) -> bool:
    """`event_needed` from the previous evaluation's (result, code) alone, as the store keeps them:
    a round compares with the stored row without building its GateResult (which checks its
    inputs as canonical JSON), every poll.gates for every waiting or baking execution."""
    return previous is None or previous != (str(current.result), current.code)


def combine(results: Iterable[GateResult]) -> GateOutcome:
    """FAIL when any gate fails, else WAIT when any waits, else PASS (also for no gates)."""
    outcomes = {result.result for result in results}
    if GateOutcome.FAIL in outcomes:
        return GateOutcome.FAIL
    if GateOutcome.WAIT in outcomes:
        return GateOutcome.WAIT
    return GateOutcome.PASS


def earliest_pass(results: Iterable[GateResult]) -> datetime | None:
    """When every waiting gate knows its `until`: the latest of them (nothing can pass before);
    None when some waiting gate does not know (poll again after `poll.gates`) or none waits."""
    untils: list[datetime] = []
    for result in results:
        if result.waiting:
            if result.until is None:
                return None
            untils.append(result.until)
    return max(untils, default=None)


def next_round_seconds(untils: Sequence[datetime | None], now: datetime, poll_seconds: int) -> float:
    """How long to wait before judging gates that wait again: until the latest `until` when every
    waiting gate knows one (nothing passes before), else one poll interval; at least one second."""
    if any(until is None for until in untils):
        return float(poll_seconds)
    latest = max(until for until in untils if until is not None)
    return max(1.0, (latest - now).total_seconds())
