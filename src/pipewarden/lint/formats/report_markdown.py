"""`report --format markdown`: headings and pipe tables, for a wiki page or a pull request."""

from __future__ import annotations

from pipewarden.lint.formats import report_common as rc
from pipewarden.lint.formats.escape import markdown_inline
from pipewarden.lint.report.aggregate import OrgReport


def _cell(value: object) -> str:
    # A pipe or a newline inside a cell would break the table; markdown and HTML metacharacters
    # are escaped (`<` as `&lt;`) so that names and reasons render as written.
    return markdown_inline(str(value), entities=True)


def _table(table: rc.Table, numeric_from: int = 1) -> str:
    headers, rows = table
    if not rows:
        return "_none_"
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" if i < numeric_from else "---:" for i in range(len(headers))) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def render(report: OrgReport, *, by: str = "team") -> str:
    parts = [f"# {_cell(rc.title(report))}", "", _cell(rc.summary_line(report))]
    history = rc.history_line(report)
    if history:
        parts += ["", _cell(history)]
    if by == "org":
        parts += ["", "## Orgs (totals over each subtree)", "", _table(rc.org_table(report, indent="\u2003"), 2)]
    else:
        parts += ["", "## Teams", "", _table(rc.team_table(report), 2)]
    parts += ["", "## Automation levels", "", _table(rc.automation_table(report))]
    parts += ["", "## Rules by pipelines failing", "", _table(rc.rules_table(report))]
    parts += ["", "## Exceptions", "", "Active, expiring within 30 days, and expired.", "",
              _table(rc.exceptions_table(report), 99)]
    return "\n".join(parts) + "\n"
