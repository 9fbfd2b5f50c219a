"""`report --format table` (the default): plain-text tables for a terminal."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from pipewarden.reports import report_common as rc
from pipewarden.reports.org_report import OrgReport


def _table(table: rc.Table) -> str:
    headers, rows = table
    if not rows:
        return "(none)"
    # Whitespace is kept so that org rows stay indented under their parents.
    return tabulate(rows, headers=headers, stralign="left", numalign="right", preserve_whitespace=True)


def render(report: OrgReport, by: str = "team", **_: Any) -> str:
    parts = [rc.title(report), rc.summary_line(report)]
    history = rc.history_line(report)
    if history:
        parts.append(history)
    sections = [
        ("Orgs (totals over each subtree)" if by == "org" else "Teams", rc.main_table(report, by)),
        ("Automation levels", rc.automation_table(report)),
        ("Rules by pipelines failing", rc.rules_table(report)),
        ("Exceptions (active, expiring within 30 days, expired)", rc.exceptions_table(report)),
    ]
    for heading, table in sections:
        parts.extend(["", heading, _table(table)])
    return "\n".join(parts) + "\n"
