"""`report --format table` (the default): plain-text tables for a terminal.

Names and reasons come from org configs and pipelines: each text cell is shown through
`escape.display` (one line, control characters as escapes, at most `MAX_CELL` characters) and
`escape.log_line` (no workflow command when the table is printed to a CI log), and text columns
are never read as numbers (a team called `1e5` stays `1e5`).
"""

from __future__ import annotations

from tabulate import tabulate

from pipewarden.lint.formats import report_common as rc
from pipewarden.lint.formats.escape import display, log_line
from pipewarden.lint.report.aggregate import OrgReport

MAX_CELL = 300
MAX_LINE = 1000


def _table(table: rc.Table) -> str:
    headers, rows = table
    if not rows:
        return "(none)"
    shown = [[log_line(display(c, MAX_CELL)) if isinstance(c, str) else c for c in row] for row in rows]
    # Columns of text are text, whatever they look like; only the Δ columns hold signed numbers
    # written as text ("+2"), which are right-aligned as numbers.
    text = [i for i, h in enumerate(headers) if not h.startswith("Δ") and any(isinstance(r[i], str) for r in rows)]
    # Whitespace is kept so that org rows stay indented under their parents.
    return tabulate(shown, headers=headers, stralign="left", numalign="right", preserve_whitespace=True,
                    disable_numparse=text)


def render(report: OrgReport, *, by: str = "team") -> str:
    parts = [log_line(display(rc.title(report), MAX_LINE)), log_line(display(rc.summary_line(report), MAX_LINE))]
    history = rc.history_line(report)
    if history:
        parts.append(log_line(display(history, MAX_LINE)))
    sections = [
        ("Orgs (totals over each subtree)" if by == "org" else "Teams", rc.main_table(report, by)),
        ("Automation levels", rc.automation_table(report)),
        ("Rules by pipelines failing", rc.rules_table(report)),
        ("Exceptions (active, expiring within 30 days, expired)", rc.exceptions_table(report)),
    ]
    for heading, table in sections:
        parts.extend(["", heading, _table(table)])
    return "\n".join(parts) + "\n"
