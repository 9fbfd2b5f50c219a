"""`rules list` and `rules show`: the catalog, with the effective levels of one org when asked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import build_context
from pipewarden.policy.catalog import load_catalog
from pipewarden.policy.rule import Rule


@dataclass(frozen=True)
class OrgSetting:
    """A rule's setting in the org asked about: its level today and its schedule, if any."""

    effective_level: str
    enforce_from: str | None
    params: dict[str, Any]


@dataclass(frozen=True)
class RuleRow:
    id: str
    title: str
    default_level: str
    setting: OrgSetting | None  # None without --org


@dataclass(frozen=True)
class RuleListing:
    """Every rule of the catalog, sorted by id; with `org`, the settings of that node."""

    rows: tuple[RuleRow, ...]
    org: str | None
    today: dt.date


def rule_listing(org_config: str | None, org: str | None, policies: Sequence[str], now: dt.datetime) -> RuleListing:
    if org is not None and org_config is None:
        raise UsageError("--org needs --org-config DIR")
    context = build_context(org_config, policies, now)
    if org is not None:
        assert context.tree is not None
        if org not in context.tree.nodes:
            raise UsageError(f"org {org!r} is not a node of {org_config}; nodes: {', '.join(sorted(context.tree.nodes))}")
    settings = context.settings(org) if org is not None else None
    rows = []
    for rule in sorted(context.catalog.rules.values(), key=lambda r: r.id):
        setting = None
        if settings is not None:
            resolved = settings[rule.id]
            setting = OrgSetting(resolved.level_at(context.today)[0],
                                 resolved.enforce_from.isoformat() if resolved.enforce_from else None,
                                 resolved.params)
        rows.append(RuleRow(rule.id, rule.title, rule.level, setting))
    return RuleListing(tuple(rows), org, context.today)


def find_rule(rule_id: str, policies: Sequence[str]) -> Rule:
    """`rules show`: the rule of that id in the catalog (built-in + `policies`)."""
    rule = load_catalog(tuple(policies)).get(rule_id)
    if rule is None:
        raise UsageError(f"unknown rule {rule_id!r}; `pipewarden rules list` shows the ids")
    return rule
