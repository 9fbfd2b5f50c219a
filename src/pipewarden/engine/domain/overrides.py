"""Overrides: a person lets one gate pass for one stage of a pipeline until the override expires
(engine.md, "Overrides"), and the gates a rollback is exempt from.

- Only `window`, `alarms`, `datapoints` and `blocklist` can be overridden; `policy`, `approval`,
  `stage_busy` and `paused` cannot (exceptions in the org config, approvals and `resume` are the
  ways). `bake_time` is not in engine.md's list either: it cannot.
- An override holds for every execution of that pipeline's stage while active: from its grant up
  to (not including) its expiry, unless revoked. A new override of the same gate and stage
  replaces the old one.
- A rollback is exempt from `window`, `alarms`, `approval`, `paused` and `policy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.domain.gates.base import PASS, GateResult
from pipewarden.engine.domain.ids import format_time, truncate_ms

OVERRIDABLE: tuple[str, ...] = ("window", "alarms", "datapoints", "blocklist")
NOT_OVERRIDABLE: tuple[str, ...] = ("policy", "approval", "stage_busy", "paused")
ROLLBACK_EXEMPT: frozenset[str] = frozenset({"window", "alarms", "approval", "paused", "policy"})

DEFAULT_TTL_SECONDS = 3600
"""`override --ttl` default: 1h."""

_WAYS = {
    "policy": "grant an exception in the org config",
    "approval": "approve the stage",
    "stage_busy": "wait for the occupying execution, or cancel it",
    "paused": "resume the pipeline",
}


@dataclass(frozen=True, slots=True)
class Override:
    gate: str
    pipeline: str
    stage: str
    actor: str
    reason: str
    granted: datetime
    expires: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        """What a new override replaces: the same pipeline, stage and gate."""
        return (self.pipeline, self.stage, self.gate)

    def active_at(self, now: datetime) -> bool:
        return self.granted <= now < self.expires

    def expired_at(self, now: datetime) -> bool:
        return now >= self.expires

    def to_json(self) -> dict[str, Any]:
        """The override object of `status`."""
        return {"gate": self.gate, "actor": self.actor, "reason": self.reason, "expires": format_time(self.expires)}

    def event_data(self) -> dict[str, Any]:
        """The `data` of `override_granted`, `override_expired` and `override_revoked`."""
        return {"gate": self.gate, "reason": self.reason, "expires": format_time(self.expires)}


def check_overridable(gate: str) -> None:
    """Refused (naming the way instead) unless `gate` can be overridden."""
    if gate in OVERRIDABLE:
        return
    way = _WAYS.get(gate)
    if way is not None:
        raise Refused("override", f"the {gate} gate cannot be overridden: {way}")
    raise Refused("override", f"unknown gate {gate!r}: one of {', '.join(OVERRIDABLE)} can be overridden")


def grant(gate: str, *, pipeline: str, stage: str, actor: str, reason: str, now: datetime,
          ttl_seconds: int = DEFAULT_TTL_SECONDS) -> Override:
    """A new override, active from `now` for `ttl_seconds`. Refused for a gate that cannot be
    overridden, an empty reason (`--reason` is required) or a ttl that is not positive."""
    check_overridable(gate)
    if not reason.strip():
        raise Refused("override", "an override needs a reason (--reason TEXT)")
    if ttl_seconds <= 0:
        raise Refused("override", f"the ttl must be positive, not {ttl_seconds}s")
    start = truncate_ms(now)
    return Override(gate, pipeline, stage, actor, reason, start, start + timedelta(seconds=ttl_seconds))


def replace(overrides: Iterable[Override], new: Override) -> tuple[Override, ...]:
    """`overrides` with `new` in place of any override of the same pipeline, stage and gate."""
    return tuple(o for o in overrides if o.key != new.key) + (new,)


def revoke(overrides: Iterable[Override], pipeline: str, stage: str, gate: str) -> tuple[tuple[Override, ...], Override]:
    """(the overrides left, the one revoked); Refused when there is none to revoke."""
    kept: list[Override] = []
    revoked: Override | None = None
    for override in overrides:
        if override.key == (pipeline, stage, gate):
            revoked = override
        else:
            kept.append(override)
    if revoked is None:
        raise Refused("override", f"no active override of {gate} for {pipeline} stage {stage}")
    return tuple(kept), revoked


def active(overrides: Iterable[Override], now: datetime) -> tuple[Override, ...]:
    return tuple(o for o in overrides if o.active_at(now))


def expired(overrides: Iterable[Override], now: datetime) -> tuple[Override, ...]:
    """Overrides whose expiry has come (each gets an `override_expired` event, then is dropped)."""
    return tuple(o for o in overrides if o.expired_at(now))


def find(overrides: Iterable[Override], pipeline: str, stage: str, gate: str, now: datetime) -> Override | None:
    """The active override of that gate for that stage, if any."""
    for override in overrides:
        if override.key == (pipeline, stage, gate) and override.active_at(now):
            return override
    return None


def apply(gate: str, result: GateResult, override: Override | None, now: datetime) -> GateResult:
    """`result`, or a PASS when an active override covers this gate. The passing result keeps what
    the gate saw (`overridden` in its inputs) so the `gate` event shows both."""
    if result.passed or override is None or override.gate != gate or not override.active_at(now):
        return result
    return PASS(
        f"overridden by {override.actor} until {format_time(override.expires)}: {override.reason} "
        f"(the gate says: {result.reason})",
        inputs={**result.inputs, "overridden": {
            "result": str(result.result), "code": result.code, "reason": result.reason,
            "actor": override.actor, "override_reason": override.reason, "expires": format_time(override.expires),
        }},
    )


def gates_for_rollback(gates: Sequence[str]) -> tuple[str, ...]:
    """The gates a rollback still passes through, in order (those it is not exempt from)."""
    return tuple(gate for gate in gates if gate not in ROLLBACK_EXEMPT)
