"""What the human-readable report formats share: the same tables, cells and wording.

Each format (table, markdown, html, csv) lays these out its own way; keeping the columns here
means a number never reads differently from one format to the next.
"""

from __future__ import annotations

from typing import Any

from pipewarden.lint.formats.common import iso_utc
from pipewarden.lint.report.aggregate import EXCEPTION_STATUSES, Deltas, OrgReport, TeamRow
from pipewarden.model.finding import AUTOMATION_LEVELS
from pipewarden.orgs.tree import OrgException

NO_TEAM = "(no team)"
Table = tuple[list[str], list[list[Any]]]


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def signed(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:+.1f}{unit}" if value else f"0.0{unit}"
    return f"{value:+d}" if value else "0"


def delta_cells(deltas: Deltas, history: bool) -> list[str]:
    if not history:
        return []
    if not deltas.previous:
        return ["new", "new"]
    return [signed(deltas.compliance, " pts") or "-", signed(deltas.findings)]


def delta_headers(history: bool) -> list[str]:
    return ["Δ compliance", "Δ findings"] if history else []


def team_name(row: TeamRow) -> str:
    return row.team if row.team is not None else NO_TEAM


def team_table(report: OrgReport) -> Table:
    headers = ["team", "org", "repos", "pipelines", "automation", "passing", "enforce", "warn", "excepted",
               "compliance", *delta_headers(report.history)]
    rows = []
    for t in report.teams:
        c = t.counts
        rows.append([team_name(t), t.org, c.repos, c.pipelines, t.automation_level, c.passing, c.enforce, c.warn,
                     c.excepted, pct(c.compliance), *delta_cells(t.deltas, report.history)])
    return headers, rows


def org_table(report: OrgReport, indent: str = "  ") -> Table:
    headers = ["org", "parent", "teams", "repos", "pipelines", "passing", "enforce", "warn", "excepted",
               "compliance", *delta_headers(report.history)]
    rows = []
    for o in report.orgs:
        c = o.counts
        rows.append([indent * o.depth + o.org, o.parent or "", o.teams, c.repos, c.pipelines, c.passing, c.enforce,
                     c.warn, c.excepted, pct(c.compliance), *delta_cells(o.deltas, report.history)])
    return headers, rows


def main_table(report: OrgReport, by: str, indent: str = "  ") -> Table:
    return org_table(report, indent) if by == "org" else team_table(report)


def automation_table(report: OrgReport) -> Table:
    return ["automation level", "teams", "pipelines"], [
        [level, report.automation[level]["teams"], report.automation[level]["pipelines"]] for level in AUTOMATION_LEVELS
    ]


def rules_table(report: OrgReport) -> Table:
    return ["rule", "pipelines failing", "enforce", "warn"], [
        [r.rule, r.pipelines_failing, r.enforce, r.warn] for r in report.rules
    ]


def covers(exception: OrgException) -> str:
    parts = []
    if exception.teams:
        parts.append("teams: " + ", ".join(exception.teams))
    if exception.pipelines:
        parts.append("pipelines: " + ", ".join(exception.pipelines))
    return "; ".join(parts)


def until(exception: OrgException) -> str:
    return "permanent" if exception.permanent or exception.expires is None else exception.expires.isoformat()


def exceptions_table(report: OrgReport) -> Table:
    headers = ["status", "rule", "org", "covers", "expires", "approved by", "reason"]
    rows = [
        [status, e.rule, e.org, covers(e), until(e), e.approved_by, e.reason]
        for status in EXCEPTION_STATUSES
        for e in report.exceptions[status]
    ]
    return headers, rows


def summary_line(report: OrgReport) -> str:
    total = report.total
    c = total.counts
    return (f"{len(report.teams)} team(s), {c.repos} repo(s), {c.pipelines} pipeline(s) ({c.invalid} invalid), "
            f"{c.passing} passing; {c.enforce} enforce, {c.warn} warn, {c.excepted} excepted; "
            f"compliance {pct(c.compliance)}")


def title(report: OrgReport) -> str:
    scope = report.scope if report.scope == report.root else f"{report.scope} (in {report.root})"
    return f"Compliance report for {scope}, {iso_utc(report.generated_at)}"


def history_line(report: OrgReport) -> str:
    if not report.history:
        return ""
    run = report.previous_run
    if run is None:
        return "Change since the previous run: none recorded yet (this is the first)."
    return f"Change since the previous run (#{run.id}, {run.generated_at})."
