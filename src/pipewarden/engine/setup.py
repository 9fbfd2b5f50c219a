"""From a loaded EngineConfig to what the server runs with (engine.md "Engine configuration").

- `resolve_pipelines(config, mirrors_dir=...)`: each `pipelines:` entry with its defaults filled
  in (the branch from `source.branch` of the pipeline file at the repository's HEAD, the file by
  the inventory's discovery order, the name from `metadata.name`), and URL repositories cloned
  into (or fetched in) bare mirrors, so that every pipeline has a local path git can read.
- `check_org_config(config)`: the org tree and policy folders load, as the policy gate loads them.
- `ConfigWatcher(config).changed()`: which org config and policy files changed since the last
  call, for the server's `config_reloaded` event.

Every user mistake is a ConfigError naming the config file and the entry's line.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.ids import check_pipeline_name
from pipewarden.errors import ConfigError, PolicyError
from pipewarden.evaluation.context import build_context
from pipewarden.load import gitrepo
from pipewarden.load.engine_config import is_git_url
from pipewarden.load.gitrepo import GitError
from pipewarden.load.inventory import PIPELINE_CANDIDATES
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.load.yamlsafe import MAX_BYTES
from pipewarden.model.engine_config import EngineConfig, EnginePipeline
from pipewarden.model.pipeline import PipelineFile
from pipewarden.orgs.tree import _config_files as org_config_files
from pipewarden.policy.catalog import rule_files

# pipeline.md: `source.branch` defaults to main.
DEFAULT_BRANCH = "main"


@dataclass(frozen=True, slots=True)
class ResolvedPipeline:
    """One pipeline the engine releases, with every default filled in.

    `name`: the pipeline's name (the entry's `name`, else the file's `metadata.name`). `repo`: a
    local path git can read: the repository's top level for a local entry, the bare mirror under
    `mirrors_dir` for a URL (`git -C REPO ...` works on both). `branch`: the branch whose heads
    are released. `path`: the pipeline file's path from the repository root (`/`-separated).
    `line`: the entry's line in the config file. `url`: the URL as written for a URL entry (the
    poller fetches the mirror from it before reading heads), None for a local repository.
    """

    name: str
    repo: str
    branch: str
    path: str
    line: int
    url: str | None = None


def resolve_pipelines(config: EngineConfig, *, mirrors_dir: Path,
                      notes: list[str] | None = None) -> list[ResolvedPipeline]:
    """The config's pipelines, in the order written, with their defaults filled in.

    URL repositories are cloned as bare mirrors under `mirrors_dir` (fetched when already
    there; a failed fetch of an existing mirror uses the old copy and appends a line to `notes`
    when given). The pipeline file is read at a commit (never from a working tree): the head of
    the entry's `branch` when given and present, else HEAD. It is read only when a default needs
    it. A file that is there but invalid is no error here (its executions fail their policy
    gate) as long as what is needed can be read from it: without an explicit `name`, its
    `metadata.name`; without an explicit `branch`, its `source.branch` (`main` when the file sets
    none or cannot be read).

    Raises ConfigError (file: the config, line: the entry's) for: a URL that cannot be cloned, a
    repository without commits or without a pipeline file when its path must be found, a file
    whose name is needed but cannot be read or parsed or has no usable `metadata.name`, a
    `source.branch` git cannot use, and two pipelines with one resolved name (naming both lines).
    """
    file = str(config.path)
    mirrors = _mirrors(config, str(mirrors_dir), notes)
    resolved: list[ResolvedPipeline] = []
    names: dict[str, int] = {}
    for entry in config.pipelines:
        one = _resolve(entry, mirrors.get(entry.repo), file)
        if one.name in names:
            raise ConfigError(f"two pipelines are named {one.name!r}: the entries at lines {names[one.name]} and "
                              f"{entry.line}; give one of them another 'name'", file, entry.line)
        names[one.name] = entry.line
        resolved.append(one)
    return resolved


def _mirrors(config: EngineConfig, mirrors_dir: str, notes: list[str] | None) -> dict[str, str]:
    """URL -> its bare mirror's git dir, one clone or fetch per URL."""
    mirrors: dict[str, str] = {}
    file = str(config.path)
    for entry in config.pipelines:
        if not is_git_url(entry.repo) or entry.repo in mirrors:
            continue
        try:
            mirrors[entry.repo], note = gitrepo.update_mirror(entry.repo, mirrors_dir)
        except GitError as error:
            raise ConfigError(f"cannot clone {entry.repo}: {error}; check the URL and access to it",
                              file, entry.line) from None
        except OSError as error:
            raise ConfigError(f"cannot write the git mirror of {entry.repo} under {mirrors_dir}: "
                              f"{error.strerror or error}", file, entry.line) from None
        if note is not None and notes is not None:
            notes.append(f"{file}:{entry.line}: {note}")
    return mirrors


def _resolve(entry: EnginePipeline, mirror: str | None, file: str) -> ResolvedPipeline:
    repo, bare = (mirror, True) if mirror is not None else (entry.repo, False)
    url = entry.repo if mirror is not None else None
    if entry.name is not None and entry.branch is not None and entry.pipeline is not None:
        return ResolvedPipeline(entry.name, repo, entry.branch, entry.pipeline, entry.line, url)
    ref, commit = _start_commit(entry, repo, bare, file)
    path, loaded = _find_file(entry, repo, bare, ref, commit, file)
    name = entry.name if entry.name is not None else _name_of(entry, loaded, path, ref, file)
    branch = entry.branch if entry.branch is not None else _branch_of(entry, loaded, path, ref, file)
    return ResolvedPipeline(name, repo, branch, path, entry.line, url)


def _start_commit(entry: EnginePipeline, repo: str, bare: bool, file: str) -> tuple[str, str]:
    """The ref and commit whose pipeline file gives the defaults: the entry's branch when it
    exists (it may not yet: the poller waits for it), else HEAD."""
    if entry.branch is not None:
        try:
            return entry.branch, gitrepo.resolve_commit(repo, bare, f"refs/heads/{entry.branch}")
        except GitError:
            pass
    try:
        return "HEAD", gitrepo.resolve_commit(repo, bare, "HEAD")
    except GitError:
        raise ConfigError(f"repository {entry.repo} has no commit at HEAD, so its pipeline file cannot be read; "
                          "commit the pipeline file, or give the entry 'name', 'branch' and 'pipeline'",
                          file, entry.line) from None


def _find_file(entry: EnginePipeline, repo: str, bare: bool, ref: str, commit: str,
               file: str) -> tuple[str, PipelineFile | None]:
    """The pipeline file's path and its content loaded (None when absent or not readable as a
    file: a symlink, over the size limit)."""
    candidates = (entry.pipeline,) if entry.pipeline is not None else PIPELINE_CANDIDATES
    try:
        blobs = gitrepo.find_blobs(repo, bare, commit, list(candidates))
        for candidate in candidates:
            blob = blobs.get(candidate)
            if blob is None:
                continue
            if blob.mode == "120000" or blob.size > MAX_BYTES:
                return candidate, None
            display = f"{entry.repo}@{ref}:{candidate}"
            return candidate, load_pipeline_bytes(display, gitrepo.show(repo, bare, commit, candidate))
    except GitError as error:
        raise ConfigError(f"cannot read repository {entry.repo} at {ref}: {error}", file, entry.line) from None
    if entry.pipeline is not None:
        # The path was given: the file may come in a later commit; until then executions fail.
        return entry.pipeline, None
    raise ConfigError(f"repository {entry.repo} has no pipeline file at {ref} (looked for "
                      f"{', '.join(PIPELINE_CANDIDATES)}); commit one, or set 'pipeline' to its path",
                      file, entry.line)


def _name_of(entry: EnginePipeline, loaded: PipelineFile | None, path: str, ref: str, file: str) -> str:
    where = f"{entry.repo}@{ref}:{path}"
    if loaded is None:
        raise ConfigError(f"cannot read the pipeline's name from {where} (missing, a symlink, or larger than "
                          f"{MAX_BYTES // 1024} KiB); fix the file or give the entry a 'name'", file, entry.line)
    name = loaded.name
    if name is None:
        why = loaded.invalid.message if loaded.invalid is not None and loaded.document is None else \
            "it has no metadata.name"
        raise ConfigError(f"cannot read the pipeline's name from {where}: {why}; fix the file or give the entry "
                          "a 'name'", file, entry.line)
    try:
        return check_pipeline_name(name)
    except InvalidValue:
        raise ConfigError(f"metadata.name {name!r} of {where} cannot name a pipeline (lowercase letters, digits "
                          "and '-', at most 63 characters); fix it or give the entry a 'name'",
                          file, entry.line) from None


def _branch_of(entry: EnginePipeline, loaded: PipelineFile | None, path: str, ref: str, file: str) -> str:
    document = loaded.document if loaded is not None else None
    source = document.get("source") if isinstance(document, dict) else None
    branch = source.get("branch") if isinstance(source, dict) else None
    if branch is None:
        return DEFAULT_BRANCH
    if not isinstance(branch, str) or not branch or branch.startswith("-"):
        raise ConfigError(f"source.branch {branch!r} of {entry.repo}@{ref}:{path} cannot name a git branch; fix "
                          "it or give the entry a 'branch'", file, entry.line)
    return branch


def check_org_config(config: EngineConfig, *, now: datetime | None = None) -> None:
    """Load the org tree and policy folders as the policy gate will (as of `now`, default the
    current time: exception caps depend on the day). Returns None; raises ConfigError naming the
    file and line of the first problem (a policy that does not compile too)."""
    when = now if now is not None else datetime.now(UTC)
    org_config = str(config.org_config) if config.org_config is not None else None
    try:
        build_context(org_config, [str(folder) for folder in config.policies], when)
    except PolicyError as error:
        raise ConfigError(error.message, error.file, error.line) from None


class ConfigWatcher:
    """Notices edits of the org config and policy files (engine.md: re-read within one
    `poll.gates`, event `config_reloaded` with the files).

    Watches the files the loaders read: `.yaml`/`.yml` files of the org config tree and the
    non-test `.rego` files of the policy folders. Content is compared by SHA-256, not by
    modification time (an edit within the clock's resolution, or with its time restored, would
    be missed). Not thread-safe; one caller (the server's loop) polls it.
    """

    def __init__(self, config: EngineConfig) -> None:
        self._org_config = config.org_config
        self._policies = config.policies
        self._known: dict[str, str] | None = None

    def changed(self) -> list[str]:
        """Absolute paths, sorted, of the watched files whose content changed, that appeared or
        that vanished since the last call (a file that became unreadable counts as changed). The
        first call records the files and returns []."""
        current = {path: _digest(path) for path in self._files()}
        previous, self._known = self._known, current
        if previous is None:
            return []
        return sorted(path for path in previous.keys() | current.keys() if previous.get(path) != current.get(path))

    def _files(self) -> Iterable[str]:
        if self._org_config is not None:
            # A missing folder walks as empty: its files then count as vanished.
            yield from org_config_files(str(self._org_config))
        for folder in self._policies:
            yield from (str(path) for path in rule_files(folder))


def _digest(path: str) -> str:
    """The SHA-256 of a regular file's content, else a marker that differs from any digest."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # Opening a FIFO would block the server's loop.
            return "not a regular file"
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
