"""`report history`: one line per recorded report run, oldest first (table or json)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from tabulate import tabulate

from pipewarden.lint.report.history import RunRecord

KEYS = ("id", "generated_at", "scope", "teams", "repos", "pipelines", "passing", "enforce", "warn", "excepted",
        "compliance")


def render(runs: Sequence[RunRecord], *, fmt: str) -> str:
    rows = [{k: getattr(run, k) for k in KEYS} for run in runs]
    if fmt == "json":
        return json.dumps({"version": 1, "runs": rows}, indent=2) + "\n"
    if not rows:
        return "no report recorded yet\n"
    table = [[row[k] if row[k] is not None else "-" for k in KEYS] for row in rows]
    return tabulate(table, headers=list(KEYS), stralign="left", numalign="right") + "\n"
