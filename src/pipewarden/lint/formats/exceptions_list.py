"""`exceptions list`: the exceptions of an org tree, soonest to end first (table or json)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from tabulate import tabulate

from pipewarden.lint.exceptions import Listed
from pipewarden.lint.formats.common import iso_utc
from pipewarden.orgs.tree import OrgException


def render(items: Sequence[Listed], *, fmt: str, now: dt.datetime) -> str:
    if fmt == "json":
        data = {
            "version": 1,
            "generated_at": iso_utc(now),
            "exceptions": [
                {**i.exception.to_json(), "status": i.status, "days_left": i.days_left,
                 "file": i.exception.file, "line": i.exception.line}
                for i in items
            ],
        }
        return json.dumps(data, indent=2) + "\n"
    if not items:
        return "no exception matches\n"
    rows = [
        [i.exception.org, i.exception.rule, _covers(i.exception), i.exception.expires or "-", _when(i),
         i.exception.approved_by, i.exception.reason, f"{i.exception.file}:{i.exception.line}"]
        for i in items
    ]
    headers = ["org", "rule", "covers", "expires", "status", "approved by", "reason", "where"]
    return tabulate(rows, headers=headers, stralign="left") + "\n"


def _covers(exception: OrgException) -> str:
    return ", ".join([*exception.pipelines, *(f"team {t}" for t in exception.teams)])


def _when(item: Listed) -> str:
    days = item.days_left
    if days is None:
        return "permanent"
    if days < 0:
        return f"expired {-days} day{'s' if days != -1 else ''} ago"
    if days == 0:
        return "expires today"
    return f"expires in {days} day{'s' if days != 1 else ''}"
