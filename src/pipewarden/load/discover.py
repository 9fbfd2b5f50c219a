"""Find pipeline files under the paths a user gives, without leaving those trees.

`discover_files` also says which files were found by walking a directory (`Discovery.discovered`):
only those may be skipped as another tool's file (cli.md; the skip itself needs the parse, so it
happens where each file is parsed anyway, see evaluation.run), and only those are subject to
`--exclude` globs (`Exclude`).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

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


def _glob_regex(pattern: str) -> str:
    """A glob as a regular expression over `/`-separated paths: `*` and `?` stay inside one
    name, `**` spans folders (`**/` also none), `[...]` is a character class."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)) > 0:
            inner = pattern[i + 1 : end]
            negate = inner.startswith("!")
            inner = inner[1:] if negate else inner
            out.append("[" + ("^/" if negate else "") + inner.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _clean(path: str) -> str:
    """A path as globs see it: `/` separators, no leading `./`, no trailing `/`."""
    text = path.replace(os.sep, "/") if os.sep != "/" else path
    while text.startswith("./"):
        text = text[2:].lstrip("/")
    return text.rstrip("/") or "."


@dataclass(frozen=True)
class Exclude:
    """`--exclude GLOB`s, and the project config's `exclude`.

    A glob from the command line is matched against the path as given (`services/a/pipeline.yaml`
    when `services` was given); one from a project config against the path relative to that
    file's folder (`base`), so that it means the same from any working directory. A glob that
    matches a folder excludes everything under it, and the walk does not enter that folder.
    """

    globs: tuple[str, ...] = ()
    config_globs: tuple[str, ...] = ()
    base: str | None = None
    _given: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _anchored: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        def compile_all(globs: Sequence[str]) -> re.Pattern[str] | None:
            if not globs:
                return None
            return re.compile("(?:" + "|".join(_glob_regex(_clean(g)) for g in globs) + r")(?:/.*)?\Z")

        object.__setattr__(self, "_given", compile_all(self.globs))
        object.__setattr__(self, "_anchored", compile_all(self.config_globs))

    def __bool__(self) -> bool:
        return bool(self.globs or self.config_globs)

    def matcher(self, root: str) -> Callable[[str], bool]:
        """Whether a path found under `root` (which starts with `root`, as the walk builds it) is
        excluded. Paths relative to `base` are made by swapping the root's prefix, not by
        resolving every path."""
        given, anchored = self._given, self._anchored
        if anchored is not None:
            base = self.base or "."
            relative_root = posixpath.normpath(_clean(os.path.relpath(os.path.abspath(root), os.path.abspath(base))))
            cut = len(root)

            def anchored_path(path: str) -> str:
                rest = _clean(path[cut:].lstrip(os.sep)) if root != "." else _clean(path)
                if rest == ".":
                    return relative_root
                return rest if relative_root == "." else f"{relative_root}/{rest}"

        def excluded(path: str) -> bool:
            if given is not None and given.match(_clean(path)):
                return True
            return anchored is not None and anchored.match(anchored_path(path)) is not None

        return excluded


@dataclass(frozen=True)
class Discovery:
    """What discovery found: the files in a stable order; of them, those found by walking a
    directory (not named on the command line); how many files and folders `--exclude` skipped."""

    files: list[str]
    discovered: frozenset[str]
    excluded: int = 0


def discover(paths: list[str]) -> list[str]:
    """The pipeline files of `discover_files`, without --exclude."""
    return discover_files(paths).files


def discover_files(paths: Sequence[str], exclude: Exclude | None = None, as_discovered: bool = False) -> Discovery:
    """Pipeline files under `paths`, in a stable order, each real file once.

    A file named directly is taken whatever its name (and --exclude does not apply to it). In a
    directory, `pipeline.yaml` and `pipeline.yml` are found at any depth (including
    `.pipewarden/`); symlinks are followed only while they stay inside the directory given, so a
    link cannot pull in files from elsewhere on the machine, and a link loop cannot hang the walk.
    Files and folders that `exclude` matches are skipped and counted.

    `as_discovered` treats the files named like discovered ones (excluded when `exclude` matches
    them, skipped later when they are another tool's): for lists of files that a tool such as
    pre-commit picked by name, not a person.
    """
    found: list[str] = []
    discovered: set[str] = set()
    seen: set[str] = set()
    skipped = [0]
    for given in paths:
        if not os.path.lexists(given):
            raise UsageError(f"path does not exist: {given}; give a pipeline file or a directory")
        walked = os.path.isdir(given)
        if walked:
            excluded = exclude.matcher(given) if exclude else None
            candidates = list(_walk(given, excluded, skipped))
        elif as_discovered and exclude and exclude.matcher(os.path.dirname(given) or ".")(given):
            skipped[0] += 1
            continue
        else:
            candidates = [(given, True)]
        for candidate, linked in candidates:
            # Only a path through a symlink can reach a file already found under another name.
            key = os.path.realpath(candidate) if linked or len(paths) > 1 else os.path.abspath(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
                if walked or as_discovered:
                    discovered.add(candidate)
    return Discovery(found, frozenset(discovered), skipped[0])


def _walk(
    root: str, excluded: Callable[[str], bool] | None = None, skipped: list[int] | None = None
) -> Iterator[tuple[str, bool]]:
    """(file, reached through a symlink) for each pipeline file under `root`; the files and
    folders `excluded` matches are left out, and counted in `skipped[0]`."""
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
                if excluded is not None and excluded(path):
                    if skipped is not None:
                        skipped[0] += 1  # not walked: the folder counts once
                    continue
                if is_link or linked:
                    # A linked directory may be one already walked, or an ancestor (a loop).
                    real = os.path.realpath(path)
                    if real in visited:
                        continue
                    visited.add(real)
                subdirs.append((path, linked or is_link))
            elif entry.name in PIPELINE_NAMES:
                if excluded is not None and excluded(path):
                    if skipped is not None:
                        skipped[0] += 1
                    continue
                yield path, linked or is_link
        stack.extend(reversed(subdirs))
