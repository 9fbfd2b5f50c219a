"""Shared test helpers: write pipeline files, run the CLI in-process."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipewarden.cli.main import cli

os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

GOOD_PIPELINE = (Path(__file__).parent / "data" / "good-pipeline.yaml").read_text()
NOW = "2026-11-26T10:00:00Z"


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str) -> CliResult:
    """Run `pipewarden ARGS` in-process with separate stdout and stderr."""
    runner = CliRunner()
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache directory (XDG_CACHE_HOME): no test sees another's cache,
    and the suite never writes to the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(relative_path, text) -> the file, under a fresh temporary directory."""

    def _write(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write


def good_pipeline(*replacements: tuple[str, str]) -> str:
    """The clean example pipeline of pipeline.md, with (old, new) text substitutions applied."""
    text = GOOD_PIPELINE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text
