"""The `report` output formats, one module each, behind one registry (like the check formats)."""

from __future__ import annotations

import importlib
from typing import Any

_REPORT_FORMATS: dict[str, str] = {
    "table": "pipewarden.lint.formats.report_table",
    "json": "pipewarden.lint.formats.report_json",
    "csv": "pipewarden.lint.formats.report_csv",
    "markdown": "pipewarden.lint.formats.report_markdown",
    "html": "pipewarden.lint.formats.report_html",
}


def report_formats() -> list[str]:
    return list(_REPORT_FORMATS)


def render_report(fmt: str, report: Any, by: str = "team") -> str:
    """Render an OrgReport; a format module is imported only when used (fast CLI start)."""
    module = importlib.import_module(_REPORT_FORMATS[fmt])
    rendered: str = module.render(report, by=by)
    return rendered
