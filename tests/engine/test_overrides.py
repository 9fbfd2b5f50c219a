"""Overrides and rollback exemptions (domain/overrides.py)."""

from __future__ import annotations

import pytest
from engine_helpers import T0, at

from pipewarden.engine.domain import overrides
from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.domain.gates import ENTRY_GATES, PASS, WAIT


def window_override(actor: str = "dana", ttl: int = 3600, now_s: float = 0) -> overrides.Override:
    return overrides.grant("window", pipeline="shop", stage="prod-canary", actor=actor, reason="hotfix",
                           now=at(now_s), ttl_seconds=ttl)


def test_which_gates() -> None:
    assert overrides.OVERRIDABLE == ("window", "alarms", "datapoints", "blocklist")
    for gate in ("policy", "approval", "stage_busy", "paused", "bake_time", "nonsense"):
        with pytest.raises(Refused):
            overrides.check_overridable(gate)
    assert overrides.gates_for_rollback(ENTRY_GATES) == ("blocklist", "stage_busy")


def test_grant_and_expiry() -> None:
    override = window_override()
    assert override.expires == at(3600)
    assert override.active_at(T0) and override.active_at(at(3599.999)) and not override.active_at(at(3600))
    assert override.to_json() == {"gate": "window", "actor": "dana", "reason": "hotfix",
                                  "expires": "2026-12-01T16:00:00.000Z"}
    assert override.event_data() == {"gate": "window", "reason": "hotfix", "expires": "2026-12-01T16:00:00.000Z"}
    assert overrides.expired([override], at(3600)) == (override,)
    assert overrides.active([override], at(3600)) == ()
    for reason, ttl in [("  ", 60), ("why", 0)]:
        with pytest.raises(Refused):
            overrides.grant("window", pipeline="p", stage="s", actor="a", reason=reason, now=T0, ttl_seconds=ttl)


def test_new_replaces_old_and_revoke() -> None:
    first = window_override("dana")
    alarms = overrides.grant("alarms", pipeline="shop", stage="prod-canary", actor="dana", reason="noisy", now=T0)
    second = window_override("lee", ttl=60, now_s=10)
    current = overrides.replace(overrides.replace([first], alarms), second)
    assert current == (alarms, second)
    assert overrides.find(current, "shop", "prod-canary", "window", at(20)) == second
    assert overrides.find(current, "shop", "prod-canary", "window", at(100)) is None
    left, revoked = overrides.revoke(current, "shop", "prod-canary", "alarms")
    assert revoked == alarms and left == (second,)
    with pytest.raises(Refused):
        overrides.revoke(left, "shop", "prod-canary", "alarms")


def test_apply() -> None:
    override = window_override()
    closed = WAIT("window_closed", "the window opens at 09:00", until=at(7200))
    passed = overrides.apply("window", closed, override, at(10))
    assert passed.passed and passed.code == "ok" and "overridden by dana" in passed.reason
    assert passed.inputs["overridden"]["code"] == "window_closed"
    assert overrides.apply("window", closed, override, at(3600)) is closed        # expired
    assert overrides.apply("alarms", closed, override, at(10)) is closed          # another gate
    ok = PASS()
    assert overrides.apply("window", ok, override, at(10)) is ok
