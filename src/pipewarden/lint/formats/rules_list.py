"""`rules list`: id, title, default level and, for an org, the effective level (table or json)."""

from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from pipewarden.lint.formats.common import enforcement_note
from pipewarden.lint.rules import RuleListing, RuleRow


def render(listing: RuleListing, *, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([_json_row(row) for row in listing.rows], indent=2) + "\n"
    headers = ["id", "title", "default"]
    table = []
    for row in listing.rows:
        line = [row.id, row.title, row.default_level]
        if row.setting is not None:
            effective = row.setting.effective_level
            if row.setting.enforce_from:
                effective += f" ({enforcement_note(row.setting.enforce_from, listing.today)})"
            line.append(effective)
        table.append(line)
    if listing.org is not None:
        headers.append(f"effective ({listing.org})")
    return tabulate(table, headers=headers) + "\n"


def _json_row(row: RuleRow) -> dict[str, Any]:
    data: dict[str, Any] = {"id": row.id, "title": row.title, "default_level": row.default_level}
    if row.setting is not None:
        data["effective_level"] = row.setting.effective_level
        data["enforce_from"] = row.setting.enforce_from
        data["params"] = row.setting.params
    return data
