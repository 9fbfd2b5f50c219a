"""`rules list`: the catalog, with the effective level of one org when asked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import build_context
from pipewarden.lint.formats.common import enforcement_note


def rules_table(org_config: str | None, org: str | None, policies: Sequence[str], now: dt.datetime, fmt: str) -> str:
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
        row: dict[str, Any] = {"id": rule.id, "title": rule.title, "default_level": rule.level}
        if settings is not None:
            setting = settings[rule.id]
            row["effective_level"] = setting.level_at(context.today)[0]
            row["enforce_from"] = setting.enforce_from.isoformat() if setting.enforce_from else None
            row["params"] = setting.params
        rows.append(row)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    headers = ["id", "title", "default"]
    table = []
    for row in rows:
        line = [row["id"], row["title"], row["default_level"]]
        if settings is not None:
            effective = str(row["effective_level"])
            if row["enforce_from"]:
                effective += f" ({enforcement_note(row['enforce_from'], context.today)})"
            line.append(effective)
        table.append(line)
    if settings is not None:
        headers.append(f"effective ({org})")
    return tabulate(table, headers=headers) + "\n"
