"""`report --format csv`: the team (or, with `--by org`, org) rows first, then the other tables.

The first table's header row is exactly the JSON keys of those rows (plus `compliance_delta` and
`findings_delta` with --history), with raw values: compliance as a number, empty when null. The
automation, rules and exceptions tables follow, each after an empty row and a one-cell title
row, so a spreadsheet shows them one under another and a program reads the file with
`csv.reader`, splitting at empty rows.

Values are data, written as they are: the csv module quotes commas, quotes and line feeds, and a
row with a carriage return in a value is written fully quoted (the module leaves a lone `\\r` bare,
which a reader takes for the end of the row), so every value reads back unchanged; only lone
surrogates, which no UTF-8 file can hold, are written as `\\udcff`. Formulas are not neutralised:
a cell starting with `=` stays what the config says.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from pipewarden.lint.formats.escape import no_surrogates
from pipewarden.lint.report.aggregate import (
    DELTA_KEYS,
    EXCEPTION_STATUSES,
    ORG_KEYS,
    RULE_KEYS,
    TEAM_KEYS,
    OrgReport,
)
from pipewarden.model.finding import AUTOMATION_LEVELS

EXCEPTION_KEYS = ("status", "org", "rule", "pipelines", "teams", "reason", "approved_by", "expires", "permanent")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return no_surrogates(" ".join(str(v) for v in value))
    if isinstance(value, str):
        return no_surrogates(value)
    return value


class _Writer:
    """csv.writer, with rows holding a carriage return written fully quoted."""

    def __init__(self, out: io.StringIO) -> None:
        self._plain = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: list[Any]) -> None:
        bare_cr = any(isinstance(value, str) and "\r" in value for value in row)
        (self._quoted if bare_cr else self._plain).writerow(row)

    def writerows(self, rows: Iterable[list[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def render(report: OrgReport, *, by: str = "team") -> str:
    out = io.StringIO()
    writer = _Writer(out)
    keys = list(ORG_KEYS if by == "org" else TEAM_KEYS) + (list(DELTA_KEYS) if report.history else [])
    rows = [o.to_json(report.history) for o in report.orgs] if by == "org" else [
        t.to_json(report.history) for t in report.teams
    ]
    writer.writerow(keys)
    writer.writerows([_cell(row[k]) for k in keys] for row in rows)

    writer.writerows([[], ["automation"], ["level", "teams", "pipelines"]])
    writer.writerows([level, report.automation[level]["teams"], report.automation[level]["pipelines"]]
                     for level in AUTOMATION_LEVELS)

    writer.writerows([[], ["rules"], list(RULE_KEYS)])
    writer.writerows([_cell(r.to_json()[k]) for k in RULE_KEYS] for r in report.rules)

    writer.writerows([[], ["exceptions"], list(EXCEPTION_KEYS)])
    for status in EXCEPTION_STATUSES:
        for exception in report.exceptions[status]:
            data = {"status": status, **exception.to_json()}
            writer.writerow([_cell(data[k]) for k in EXCEPTION_KEYS])
    return out.getvalue()
