"""`report --format table` (the default): plain-text tables for a terminal."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from pipewarden.reports import report_common as rc
from pipewarden.reports.org_report import OrgReport


def _table(table: rc.Table, align_first: bool = True) -> str:
    headers, rows = table
    return tabulate(rows, headers=headers, disable_numparse=False, stralign="left", numalign="right")


def render(report: OrgReport, by: str = "team", **_: Any) -> str:
    parts = [rc.title(report), rc.summary_line(report)]
    history = rc.history_line(report)
    if history:
        parts.append(history)
    parts.append("")
    parts.append("Orgs (totals over each subtree)" if by == "org" else "Teams")
    parts.append(_table(rc.main_table(report, by)))
    parts.append("")
    parts.append("Automation levels")
    parts.append(_table(rc.automation_table(report)))
    parts.append("")
    parts.append("Rules by pipelines failing")
    parts.append(_table(rc.rules_table(report)) if report.rules else "(no failing rule)")
    parts.append("")
    parts.append("Exceptions (active, expiring within 30 days, expired)")
    parts.append(_table(rc.exceptions_table(report)) if rc.exceptions_table(report)[1] else "(none)")
    return "\n".join(parts) + "\n"
