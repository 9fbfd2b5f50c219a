"""Find and read the project config: `.pipewarden.yaml` in the working directory or the nearest
parent, read like every other file (safe YAML, limits, schema) and failing like an org config:
a ConfigError naming the file and the line."""

from __future__ import annotations

import os
from typing import Any

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load.validate import first_issue, schema_issues
from pipewarden.load.yamlsafe import load_yaml_file
from pipewarden.model.project import KEYS, PROJECT_FILE, ProjectConfig

SCHEMA = "projectconfig"
# A project config is a handful of lines.
MAX_BYTES = 64 * 1024


def find_project_config(start: str = ".") -> str | None:
    """The absolute path of `.pipewarden.yaml` in `start` or its nearest parent that has one."""
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, PROJECT_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _shown(path: str) -> str:
    """`path` relative to the working directory, as outputs and messages show it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path


def load_project_config(path: str) -> ProjectConfig:
    """Read and validate the project config at `path`; any problem is a ConfigError with its line."""
    file = _shown(path)
    try:
        parsed = load_yaml_file(path, MAX_BYTES)
    except LoadError as error:
        raise ConfigError(error.message, file, error.line) from None
    document = parsed.value
    issues = schema_issues(SCHEMA, document)
    if issues:
        issue, line = first_issue(parsed, issues)
        raise ConfigError(issue.message, file, line)
    folder = os.path.dirname(file)

    def resolved(value: str) -> str:
        expanded = os.path.expanduser(value)
        return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(folder, expanded))

    options: dict[str, Any] = {}
    for key, kind in KEYS.items():
        if key not in document:
            continue
        value = document[key]
        if kind == "path":
            options[key] = resolved(value)
        elif kind == "paths":
            options[key] = tuple(resolved(item) for item in value)
        elif kind == "globs":
            options[key] = tuple(value)
        else:
            options[key] = value
    return ProjectConfig(file, os.path.dirname(os.path.abspath(path)), options)
