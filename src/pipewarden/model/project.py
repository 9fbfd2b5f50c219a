"""The project config (`.pipewarden.yaml`, kind `ProjectConfig`): defaults for the checker's
command-line options, so that local runs match CI without repeating options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROJECT_FILE = ".pipewarden.yaml"

# Each key of the file and how its value is read: a path relative to the file, a list of such
# paths, a list of globs (kept as written: they are matched relative to the file's folder), or a
# value taken as it is. A new key (say `opa_url`, a "value") is one line here, one property in
# schemas/projectconfig.schema.json, and one option of that name on the commands that take it.
KEYS: dict[str, str] = {
    "org_config": "path",
    "policies": "paths",
    "exclude": "globs",
    "fail_on": "value",
    "cache_dir": "path",
}


@dataclass(frozen=True)
class ProjectConfig:
    """A loaded project config.

    `file` is its path as the outputs name it (relative to the working directory when it is
    there or above); `base` the absolute folder holding it. `options` maps each key the file
    sets to its value, paths already made relative to the working directory (or absolute), lists
    as tuples: each key is also the name of the command-line option it stands for.
    """

    file: str
    base: str
    options: dict[str, Any]
