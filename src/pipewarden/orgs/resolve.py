"""Resolution along the org chain: effective rule settings, levels now, and exceptions.

This is the one place where levels, schedules and exceptions are applied; rules never know
whether they warn or block.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pipewarden.orgs.tree import OrgException, OrgTree
from pipewarden.policy.builtin import ALWAYS_ENFORCED
from pipewarden.policy.catalog import Catalog


@dataclass(frozen=True)
class RuleSetting:
    """A rule's resolved configuration for one org node."""

    rule: str
    level: str
    enforce_from: dt.date | None
    params: dict[str, Any]

    def level_at(self, today: dt.date) -> tuple[str, str | None]:
        """(effective level, the enforce_from date to show or None) on `today` (UTC)."""
        if self.rule in ALWAYS_ENFORCED:
            return "enforce", None
        if self.level == "off":
            return "off", None
        if self.enforce_from is not None:
            if today < self.enforce_from:
                return "warn", self.enforce_from.isoformat()
            return "enforce", None
        return self.level, None


def default_settings(catalog: Catalog) -> dict[str, RuleSetting]:
    """Every rule at its catalog default: what a run without org configs uses."""
    return {r.id: RuleSetting(r.id, r.level, None, dict(r.params)) for r in catalog.rules.values()}


def resolve_settings(tree: OrgTree, node: str, catalog: Catalog) -> dict[str, RuleSetting]:
    """Walk root -> node; each node's level, enforce_from and params override its ancestors'."""
    state: dict[str, dict[str, Any]] = {
        r.id: {"level": r.level, "enforce_from": None, "params": dict(r.params)} for r in catalog.rules.values()
    }
    for org in tree.chain(node):
        for rule_id, entry in org.rules.items():
            current = state[rule_id]
            if entry.enforce_from is not None:
                # Schedules whatever warn/enforce level is inherited; an inherited `off` stays off.
                if entry.level is not None:
                    current["level"] = entry.level
                current["enforce_from"] = entry.enforce_from
            elif entry.level is not None:
                current["level"] = entry.level
                current["enforce_from"] = None
            if entry.params:
                current["params"] = {**current["params"], **entry.params}
    return {
        rule_id: RuleSetting(rule_id, s["level"], s["enforce_from"], s["params"]) for rule_id, s in state.items()
    }


def find_exception(
    tree: OrgTree, node: str, rule: str, pipeline: str | None, team: str | None, today: dt.date
) -> OrgException | None:
    """The active exception covering this finding: granted on the chain, nearest node first."""
    for org in reversed(tree.chain(node)):
        for exception in org.exceptions:
            if exception.rule == rule and exception.active(today) and exception.matches(pipeline, team):
                return exception
    return None


# How long after its end an exception is still named in the findings it used to cover.
RECENTLY_EXPIRED_DAYS = 30


def recently_expired_exception(
    tree: OrgTree, node: str, rule: str, pipeline: str | None, team: str | None, today: dt.date,
    days: int = RECENTLY_EXPIRED_DAYS,
) -> OrgException | None:
    """The exception granted on the chain that covered this finding until it expired in the last
    `days` days (the latest to expire), for findings that say why they are back."""
    latest: OrgException | None = None
    for org in tree.chain(node):
        for exception in org.exceptions:
            if (exception.rule != rule or exception.expires is None or exception.permanent
                    or not 0 < (today - exception.expires).days <= days or not exception.matches(pipeline, team)):
                continue
            if latest is None or latest.expires is None or exception.expires > latest.expires:
                latest = exception
    return latest


def exception_status(exception: OrgException, today: dt.date, soon_days: int = 30) -> str:
    """`active`, `expiring` (active, ends within `soon_days`) or `expired`."""
    if not exception.active(today):
        return "expired"
    if exception.expires is not None and (exception.expires - today).days <= soon_days:
        return "expiring"
    return "active"
