"""The inventory (org-config.md, "Inventory"): every repository of the fleet, with or without a pipeline.

Loading has two steps. `load_inventory` reads the YAML file (safe loader, schema, checks a schema
cannot express) and fails with a ConfigError naming the file and line. `resolve_inventory` then
finds each repository's pipeline file: on disk for a local checkout, or with git at a ref for a
checkout with `ref` and for a URL (cloned as a bare mirror into a cache, then fetched on later
runs). Git work runs in threads because it is subprocess-bound; evaluation happens elsewhere.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load import gitrepo
from pipewarden.load.gitrepo import GitError
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.load.validate import first_issue, schema_issues
from pipewarden.load.yamlsafe import INVENTORY_MAX_BYTES, MAX_BYTES, load_yaml_file
from pipewarden.model.fleet import Repo
from pipewarden.model.pipeline import Invalid, PipelineFile

SCHEMA = "inventory"
PIPELINE_CANDIDATES = ("pipeline.yaml", "pipeline.yml", ".pipewarden/pipeline.yaml", ".pipewarden/pipeline.yml")
GIT_JOBS = 8

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class InventoryEntry:
    """One `repos` item as written; `path` is still relative to the inventory file."""

    name: str
    path: str | None
    url: str | None
    ref: str | None
    team: str | None
    pipeline: str | None
    line: int


@dataclass(frozen=True)
class Inventory:
    file: str
    entries: tuple[InventoryEntry, ...]


@dataclass
class Fleet:
    """What a report evaluates: every repository, and where each pipeline is read from.

    `paths` are working-tree files, evaluated from disk (in worker processes for large fleets);
    `loaded` are files already read from git, or rejected before reading. Every file appears
    once, under the name its repository's `Repo.file` carries. `discovered` are the files found
    by walking a directory (not named, not an inventory's): another tool's file among them is
    skipped (cli.md).
    """

    repos: list[Repo] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    loaded: list[PipelineFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    discovered: frozenset[str] = frozenset()


def load_inventory(file: str) -> Inventory:
    """Read and validate an inventory file; any problem is a ConfigError with its line."""
    if not os.path.isfile(file):
        raise ConfigError("inventory file does not exist or is not a file", file)
    try:
        parsed = load_yaml_file(file, INVENTORY_MAX_BYTES)
    except LoadError as error:
        raise ConfigError(error.message, file, error.line) from None
    document = parsed.value
    items = document.get("repos") if isinstance(document, dict) else None
    if isinstance(items, list):
        # Say "path or url" plainly before the schema's oneOf says something vaguer.
        for i, item in enumerate(items):
            if isinstance(item, dict) and ("path" in item) == ("url" in item):
                raise ConfigError(
                    "a repository needs exactly one of 'path' (a local checkout) or 'url' (a git URL)",
                    file, parsed.line_of(f"repos[{i}]"),
                )
    issues = schema_issues(SCHEMA, document)
    if issues:
        issue, line = first_issue(parsed, issues)
        raise ConfigError(issue.message, file, line)
    entries: list[InventoryEntry] = []
    names: dict[str, int] = {}
    for i, item in enumerate(document["repos"]):
        at = f"repos[{i}]"
        line = parsed.line_of(at)
        name = item["name"]
        if name in names:
            raise ConfigError(f"repository {name!r} is already listed at line {names[name]}; names must be unique",
                              file, parsed.line_of(f"{at}.name"))
        names[name] = line
        ref = item.get("ref")
        if ref is not None and ref.startswith("-"):
            raise ConfigError(f"ref {ref!r} may not start with '-'", file, parsed.line_of(f"{at}.ref"))
        pipeline = item.get("pipeline")
        if pipeline is not None:
            pipeline = _repo_relative(pipeline, file, parsed.line_of(f"{at}.pipeline"))
        entries.append(InventoryEntry(name, item.get("path"), item.get("url"), ref, item.get("team"), pipeline, line))
    return Inventory(file, tuple(entries))


def _repo_relative(path: str, file: str, line: int) -> str:
    """A `pipeline` path must stay inside its repository: relative, without '..'."""
    normal = posixpath.normpath(path.replace("\\", "/"))
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../") or normal == ".":
        raise ConfigError(
            f"pipeline {path!r} must be a file path inside the repository, relative to its root", file, line
        )
    return normal


def resolve_inventory(inventory: Inventory, cache_dir: str | None = None, jobs: int = GIT_JOBS) -> Fleet:
    """Find every repository's pipeline file; clone or fetch git URLs into `cache_dir` first."""
    cache = cache_dir or gitrepo.default_cache_dir()
    base = os.path.dirname(inventory.file)
    fleet = Fleet()
    mirrors = _update_mirrors(inventory, cache, jobs, fleet.notes)

    def one(entry: InventoryEntry) -> tuple[Repo, str | PipelineFile | None, str | None]:
        try:
            if entry.url is not None:
                return _from_git(entry, mirrors[entry.url], True, entry.ref or "HEAD", entry.url, inventory.file)
            directory = _local_dir(base, entry, inventory.file)
            if entry.ref is not None:
                return _from_git(entry, directory, False, entry.ref, directory, inventory.file)
            return _from_disk(entry, directory, inventory.file)
        except GitError as error:
            where = entry.url or entry.path
            raise ConfigError(f"repository {entry.name!r} ({where}): {error}", inventory.file, entry.line) from None

    git_entries = sum(1 for e in inventory.entries if e.url is not None or e.ref is not None)
    results = _map(one, inventory.entries, jobs if git_entries else 1)
    seen: dict[object, InventoryEntry] = {}
    for entry, (repo, source, note) in zip(inventory.entries, results):
        if repo.file is not None:
            key = _file_identity(repo.file, source)
            if key in seen:
                raise ConfigError(
                    f"repository {entry.name!r} reads the same pipeline file as {seen[key].name!r} "
                    f"(line {seen[key].line}): {repo.file}",
                    inventory.file, entry.line,
                )
            seen[key] = entry
        fleet.repos.append(repo)
        if isinstance(source, str):
            fleet.paths.append(source)
        elif isinstance(source, PipelineFile):
            fleet.loaded.append(source)
        if note:
            fleet.notes.append(note)
    return fleet


def _file_identity(shown: str, source: str | PipelineFile | None) -> object:
    """What makes two entries the same file: the device and inode of a file on disk (so a
    repository reached through a link and through its real path is one file), else its name."""
    if isinstance(source, str):
        try:
            info = os.stat(source)
            return (info.st_dev, info.st_ino)
        except OSError:
            pass
    return shown


def _map(function: Callable[[T], R], items: tuple[T, ...], jobs: int) -> list[R]:
    """`map` in threads when that helps; the first failing item (in order) raises."""
    if jobs <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(function, items))


def _update_mirrors(inventory: Inventory, cache: str, jobs: int, notes: list[str]) -> dict[str, str]:
    first_entry: dict[str, InventoryEntry] = {}
    for entry in inventory.entries:
        if entry.url is not None:
            first_entry.setdefault(entry.url, entry)
    if not first_entry:
        return {}

    def update(url: str) -> tuple[str, str | None]:
        try:
            return gitrepo.update_mirror(url, cache)
        except GitError as error:
            entry = first_entry[url]
            raise ConfigError(
                f"repository {entry.name!r}: cannot clone {url}: {error}; check the URL and your access to it",
                inventory.file, entry.line,
            ) from None
        except OSError as error:
            raise ConfigError(f"cannot use the cache directory {cache}: {error.strerror or error}; "
                              "pass --cache-dir DIR") from None

    urls = tuple(first_entry)
    results = _map(update, urls, jobs)
    mirrors: dict[str, str] = {}
    for url, (directory, note) in zip(urls, results):
        mirrors[url] = directory
        if note:
            notes.append(f"{inventory.file}:{first_entry[url].line}: {note}")
    return mirrors


def _local_dir(base: str, entry: InventoryEntry, file: str) -> str:
    assert entry.path is not None
    directory = os.path.normpath(os.path.join(base, os.path.expanduser(entry.path)))
    if not os.path.isdir(directory):
        raise ConfigError(
            f"repository {entry.name!r}: path {directory} does not exist or is not a directory", file, entry.line
        )
    return directory


def _candidates(entry: InventoryEntry) -> tuple[str, ...]:
    return (entry.pipeline,) if entry.pipeline is not None else PIPELINE_CANDIDATES


def _no_pipeline(entry: InventoryEntry, file: str) -> str | None:
    """A note only when the inventory named a file that is not there: likely moved or mistyped."""
    if entry.pipeline is None:
        return None
    return (f"{file}:{entry.line}: repository {entry.name!r} has no file {entry.pipeline}; "
            "counted as a repository without a pipeline")


def _from_disk(entry: InventoryEntry, directory: str, file: str) -> tuple[Repo, str | PipelineFile | None, str | None]:
    where = f"{file}:{entry.line}"
    for candidate in _candidates(entry):
        path = os.path.join(directory, *candidate.split("/"))
        if not os.path.isfile(path):
            continue
        if _leaves(directory, candidate, path):
            # The same defence as discovery: a link must not pull in files from elsewhere.
            invalid = Invalid("the pipeline file is a symlink that leaves its repository; replace it with the file",
                              "", 1)
            return Repo(entry.name, entry.team, path, where), PipelineFile(path, None, {}, invalid), None
        return Repo(entry.name, entry.team, path, where), path, None
    return Repo(entry.name, entry.team, None, where), None, _no_pipeline(entry, file)


def _leaves(directory: str, candidate: str, path: str) -> bool:
    """Does `path` (the repository `directory` plus `candidate`) lead out of the repository?

    Only a symlink or a `..` inside the repository can make it: the links are looked for
    part by part (one lstat for `pipeline.yaml`), and only when one is there are both real
    paths worked out (os.path.realpath costs an lstat per part of the whole path, and an
    inventory lists thousands of repositories).
    """
    inside = directory
    for part in candidate.split("/"):
        inside = os.path.join(inside, part)
        if part in ("", ".", "..") or os.path.islink(inside):
            real_root = os.path.realpath(directory)
            return not os.path.realpath(path).startswith(real_root.rstrip(os.sep) + os.sep)
    return False


def _from_git(
    entry: InventoryEntry, repo: str, bare: bool, ref: str, shown: str, file: str
) -> tuple[Repo, str | PipelineFile | None, str | None]:
    """Read the pipeline at `ref` from a bare mirror (`bare`) or a local checkout, without checking out."""
    where = f"{file}:{entry.line}"
    prefix = "" if bare else _prefix(repo)
    try:
        commit = gitrepo.resolve_commit(repo, bare, ref)
    except GitError:
        raise GitError(f"ref {ref!r} does not name a commit; check the branch, tag or commit id") from None
    wanted = [prefix + c for c in _candidates(entry)]
    blobs = gitrepo.find_blobs(repo, bare, commit, wanted)
    for candidate, path in zip(_candidates(entry), wanted):
        blob = blobs.get(path)
        if blob is None:
            continue
        display = f"{shown}@{ref}:{candidate}" if bare else f"{os.path.join(shown, *candidate.split('/'))}@{ref}"
        repo_row = Repo(entry.name, entry.team, display, where)
        if blob.mode == "120000":
            invalid = Invalid("the pipeline file is a symlink in git; commit the file itself", "", 1)
            return repo_row, PipelineFile(display, None, {}, invalid), None
        if blob.size > MAX_BYTES:
            invalid = Invalid(f"the file is larger than {MAX_BYTES // 1024} KiB; split or shorten it", "", 1)
            return repo_row, PipelineFile(display, None, {}, invalid), None
        return repo_row, load_pipeline_bytes(display, gitrepo.show(repo, bare, commit, path)), None
    return Repo(entry.name, entry.team, None, where), None, _no_pipeline(entry, file)


def _prefix(directory: str) -> str:
    try:
        return gitrepo.toplevel_prefix(directory)
    except GitError:
        raise GitError(f"{directory} is not inside a git repository, so 'ref' cannot be read; "
                       "remove 'ref' to read the working tree") from None
