"""Output formats: each one a pure function from a result to text, behind one registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CheckFormatter = Callable[..., str]

_CHECK_FORMATS: dict[str, str] = {
    "text": "pipewarden.lint.formats.check_text",
    "json": "pipewarden.lint.formats.check_json",
    "sarif": "pipewarden.lint.formats.check_sarif",
    "github": "pipewarden.lint.formats.check_github",
    "junit": "pipewarden.lint.formats.check_junit",
    "markdown": "pipewarden.lint.formats.check_markdown",
    "gitlab": "pipewarden.lint.formats.check_gitlab",
}


def check_formats() -> list[str]:
    return list(_CHECK_FORMATS)


def register_check_format(name: str, module: str) -> None:
    _CHECK_FORMATS[name] = module


def render_check(fmt: str, result: Any, **options: Any) -> str:
    """Render a check result; formats are imported only when used (fast CLI start)."""
    import importlib

    module = importlib.import_module(_CHECK_FORMATS[fmt])
    rendered: str = module.render(result, **options)
    return rendered
