"""The two registries of output formats: one for `check`, one for `report`.

Each format is a module with one pure `render` function of its registry's signature (the
protocols below); a module is imported only when its format is used (fast CLI start).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipewarden.evaluation.result import Result
    from pipewarden.lint.report.aggregate import OrgReport
    from pipewarden.model.finding import Finding


class CheckFormat(Protocol):
    """`check --format NAME`: the findings of a run (with `--base`, the fixed ones too) as text.
    `docs_url` is `--docs-url`, the base of the rule pages that the formats which link rule docs
    (SARIF, markdown) use; None means the default (ci_common.DEFAULT_DOCS_URL)."""

    def __call__(
        self, result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
        docs_url: str | None = None,
    ) -> str: ...


class ReportFormat(Protocol):
    """`report --format NAME`: an org report as text, with team or org rows (`--by`)."""

    def __call__(self, report: OrgReport, *, by: str = "team") -> str: ...


# One loader per format: the import happens on use, and mypy checks each `render` against its
# registry's signature.
def _check_text() -> CheckFormat:
    from pipewarden.lint.formats import check_text

    return check_text.render


def _check_json() -> CheckFormat:
    from pipewarden.lint.formats import check_json

    return check_json.render


def _check_sarif() -> CheckFormat:
    from pipewarden.lint.formats import check_sarif

    return check_sarif.render


def _check_github() -> CheckFormat:
    from pipewarden.lint.formats import check_github

    return check_github.render


def _check_junit() -> CheckFormat:
    from pipewarden.lint.formats import check_junit

    return check_junit.render


def _check_markdown() -> CheckFormat:
    from pipewarden.lint.formats import check_markdown

    return check_markdown.render


def _check_gitlab() -> CheckFormat:
    from pipewarden.lint.formats import check_gitlab

    return check_gitlab.render


def _report_table() -> ReportFormat:
    from pipewarden.lint.formats import report_table

    return report_table.render


def _report_json() -> ReportFormat:
    from pipewarden.lint.formats import report_json

    return report_json.render


def _report_csv() -> ReportFormat:
    from pipewarden.lint.formats import report_csv

    return report_csv.render


def _report_markdown() -> ReportFormat:
    from pipewarden.lint.formats import report_markdown

    return report_markdown.render


def _report_html() -> ReportFormat:
    from pipewarden.lint.formats import report_html

    return report_html.render


_CHECK_FORMATS: dict[str, Callable[[], CheckFormat]] = {
    "text": _check_text,
    "json": _check_json,
    "sarif": _check_sarif,
    "github": _check_github,
    "junit": _check_junit,
    "markdown": _check_markdown,
    "gitlab": _check_gitlab,
}

_REPORT_FORMATS: dict[str, Callable[[], ReportFormat]] = {
    "table": _report_table,
    "json": _report_json,
    "csv": _report_csv,
    "markdown": _report_markdown,
    "html": _report_html,
}


def check_formats() -> list[str]:
    return list(_CHECK_FORMATS)


def report_formats() -> list[str]:
    return list(_REPORT_FORMATS)


def check_format(name: str) -> CheckFormat:
    """The `render` of a check format (a KeyError for an unknown name: the CLI checks first)."""
    return _CHECK_FORMATS[name]()


def report_format(name: str) -> ReportFormat:
    """The `render` of a report format (a KeyError for an unknown name: the report checks first)."""
    return _REPORT_FORMATS[name]()


def render_check(
    fmt: str, result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    return check_format(fmt)(result, now=now, fixed=fixed, fail_on=fail_on, docs_url=docs_url)


def render_report(fmt: str, report: OrgReport, *, by: str = "team") -> str:
    return report_format(fmt)(report, by=by)

