"""Find pipeline files under the paths a user gives, without leaving those trees."""

from __future__ import annotations

import os
from collections.abc import Iterator

from pipewarden.errors import UsageError

PIPELINE_NAMES = ("pipeline.yaml", "pipeline.yml")
# Folders that never hold a pipeline of the repository being checked, and can be huge.
SKIPPED_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".nox", ".mypy_cache", ".venv", "venv"}


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _inside(path: str, root_real: str) -> bool:
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def discover(paths: list[str]) -> list[str]:
    """Pipeline files under `paths`, in a stable order, each real file once.

    A file named directly is taken whatever its name. In a directory, `pipeline.yaml` and
    `pipeline.yml` are found at any depth (including `.pipewarden/`); symlinks are followed
    only while they stay inside the directory given, so a link cannot pull in files from
    elsewhere on the machine, and a link loop cannot hang the walk.
    """
    found: list[str] = []
    seen: set[str] = set()
    for given in paths:
        if not os.path.lexists(given):
            raise UsageError(f"path does not exist: {given}; give a pipeline file or a directory")
        candidates = [given] if not os.path.isdir(given) else list(_walk(given))
        for candidate in candidates:
            key = os.path.realpath(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def _walk(root: str) -> Iterator[str]:
    root_real = os.path.realpath(root)
    visited: set[str] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        real = os.path.realpath(directory)
        if real in visited:
            continue
        visited.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs: list[str] = []
        for entry in entries:
            path = entry.path if directory != "." else entry.name
            if entry.is_symlink() and not _inside(path, root_real):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name in SKIPPED_DIRS or _is_virtualenv(path):
                    continue
                subdirs.append(path)
            elif entry.name in PIPELINE_NAMES:
                yield path
        stack.extend(reversed(subdirs))
