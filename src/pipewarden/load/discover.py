"""Find pipeline files under the paths a user gives, without leaving those trees."""

from __future__ import annotations

import os
from collections.abc import Iterator

from pipewarden.errors import UsageError

PIPELINE_NAMES = ("pipeline.yaml", "pipeline.yml")
# Folders that never hold a pipeline of the repository being checked, and can be huge.
SKIPPED_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".nox", ".mypy_cache", ".venv", "venv"}


def _is_file(entry: os.DirEntry[str]) -> bool:
    """`entry.is_file()`, False where it cannot be told (a symlink loop, no permission)."""
    try:
        return entry.is_file()
    except OSError:
        return False


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
        candidates = [(given, True)] if not os.path.isdir(given) else list(_walk(given))
        for candidate, linked in candidates:
            # Only a path through a symlink can reach a file already found under another name.
            key = os.path.realpath(candidate) if linked or len(paths) > 1 else os.path.abspath(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def _walk(root: str) -> Iterator[tuple[str, bool]]:
    """(file, reached through a symlink) for each pipeline file under `root`."""
    root_real = os.path.realpath(root)
    visited: set[str] = {root_real}
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        directory, linked = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        # A virtualenv below the root (it has a pyvenv.cfg) holds no pipeline of the project.
        # Judged from the listing already made rather than a stat of every folder in advance.
        if directory != root and any(e.name == "pyvenv.cfg" and _is_file(e) for e in entries):
            continue
        subdirs: list[tuple[str, bool]] = []
        for entry in entries:
            path = entry.path if directory != "." else entry.name
            is_link = entry.is_symlink()
            if is_link and not _inside(path, root_real):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name in SKIPPED_DIRS:
                    continue
                if is_link or linked:
                    # A linked directory may be one already walked, or an ancestor (a loop).
                    real = os.path.realpath(path)
                    if real in visited:
                        continue
                    visited.add(real)
                subdirs.append((path, linked or is_link))
            elif entry.name in PIPELINE_NAMES:
                yield path, linked or is_link
        stack.extend(reversed(subdirs))
