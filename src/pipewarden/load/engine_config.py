"""The release engine's configuration file (`kind: EngineConfig`, engine.md "Engine configuration").

`load_engine_config(path)` reads the file with the defended YAML reader, checks it against
`schemas/engineconfig.schema.json`, then checks what a schema cannot say: durations of at least
one second, folders that exist, local repositories that are the top level of a git checkout, and
explicit pipeline names used once. Every path is resolved against the file's directory. Any
problem is a ConfigError naming the file, the line and what to do (the CLI's exit 2).

Reading the pipeline files themselves (default branch, file and name) is `engine.setup`'s work:
it needs git at a ref and clones of URL repositories, which a config check should not wait for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pipewarden.errors import ConfigError
from pipewarden.load import gitrepo
from pipewarden.load.gitrepo import GitError
from pipewarden.load.inventory import _repo_relative as repo_relative
from pipewarden.load.validate import load_config_file
from pipewarden.load.yamlsafe import ParsedYaml
from pipewarden.model.durations import duration_seconds
from pipewarden.model.engine_config import (
    DEFAULT_POLL_GATES_SECONDS,
    DEFAULT_POLL_GIT_SECONDS,
    EngineConfig,
    EnginePipeline,
)

SCHEMA = "engineconfig"

# git's own rule (git-clone(1), "GIT URLS"): `scheme://...` is a URL, and so is the scp-like
# `[user@]host:path` when no slash comes before the first colon. Anything else is a local path.
_SCHEME_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_URL = re.compile(r"[^/:]+:")


def is_git_url(repo: str) -> bool:
    """True when git would read `repo` as a URL (`https://...`, `file:///...`, `git@host:org/x`)."""
    return _SCHEME_URL.match(repo) is not None or _SCP_URL.match(repo) is not None


def load_engine_config(path: Path) -> EngineConfig:
    """Load the EngineConfig at `path`.

    Returns an EngineConfig whose `path` is absolute and whose `org_config`, `policies` and local
    `repo` values are absolute paths (URLs stay as written); `poll_*_seconds` are whole seconds.
    Raises ConfigError with the file and line for: a file that cannot be read or parsed, unknown
    keys and bad values (schema), a poll interval of 0, an `org_config` or policy folder that is
    not a directory, a local `repo` that is not the top level of a git working tree, a `branch`
    starting with '-', a `pipeline` path leaving its repository, and two entries with the same
    `name`.
    """
    file = os.path.abspath(path)
    if not os.path.isfile(file):
        raise ConfigError("engine config file does not exist or is not a file; give the path of an EngineConfig "
                          "YAML file", file)
    parsed = load_config_file(file, SCHEMA)
    document: dict[str, Any] = parsed.value
    base = os.path.dirname(file)
    poll: dict[str, Any] = document.get("poll", {})
    org_config = document.get("org_config")
    prometheus = document.get("prometheus")
    return EngineConfig(
        path=Path(file),
        pipelines=_pipelines(parsed, file, base),
        org_config=None if org_config is None else _folder(org_config, "org_config", parsed, file, base),
        policies=tuple(_folder(folder, f"policies[{i}]", parsed, file, base)
                       for i, folder in enumerate(document.get("policies", []))),
        store=document.get("store", "sqlite"),
        prometheus_url=None if prometheus is None else prometheus["url"],
        poll_git_seconds=_interval(poll, "git", DEFAULT_POLL_GIT_SECONDS, parsed, file),
        poll_gates_seconds=_interval(poll, "gates", DEFAULT_POLL_GATES_SECONDS, parsed, file),
    )


def _resolve(base: str, written: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(written)))


def _folder(written: str, at: str, parsed: ParsedYaml, file: str, base: str) -> Path:
    folder = _resolve(base, written)
    if not os.path.isdir(folder):
        raise ConfigError(f"{at} {written!r} ({folder}) does not exist or is not a directory; paths are relative "
                          "to this file's directory", file, parsed.line_of(at))
    return Path(folder)


def _interval(poll: dict[str, Any], key: str, default: int, parsed: ParsedYaml, file: str) -> int:
    if key not in poll:
        return default
    # The schema has checked the form, so this cannot raise.
    seconds = duration_seconds(poll[key])
    if seconds < 1:
        # 0 would make the poller spin on git (or the gates on their sources) without pause.
        raise ConfigError(f"poll.{key} is {poll[key]!r}; it must be at least 1s", file, parsed.line_of(f"poll.{key}"))
    return seconds


def _pipelines(parsed: ParsedYaml, file: str, base: str) -> tuple[EnginePipeline, ...]:
    pipelines: list[EnginePipeline] = []
    named: dict[str, int] = {}
    for i, item in enumerate(parsed.value["pipelines"]):
        at = f"pipelines[{i}]"
        line = parsed.line_of(at)
        name = item.get("name")
        if name is not None:
            if name in named:
                raise ConfigError(f"pipeline name {name!r} is already used by the entry at line {named[name]}; "
                                  "give each pipeline its own name", file, parsed.line_of(f"{at}.name"))
            named[name] = line
        branch = item.get("branch")
        if branch is not None and branch.startswith("-"):
            # git would read it as an option.
            raise ConfigError(f"branch {branch!r} may not start with '-'", file, parsed.line_of(f"{at}.branch"))
        pipeline = item.get("pipeline")
        if pipeline is not None:
            pipeline = repo_relative(pipeline, file, parsed.line_of(f"{at}.pipeline"))
        repo = item["repo"]
        if not is_git_url(repo):
            repo = _local_repo(repo, file, parsed.line_of(f"{at}.repo"), base)
        pipelines.append(EnginePipeline(repo=repo, branch=branch, pipeline=pipeline, name=name, line=line))
    return tuple(pipelines)


def _local_repo(written: str, file: str, line: int, base: str) -> str:
    """The absolute path of a local repository entry, which must be the top level of a git
    working tree: the engine reads branch heads and files at commits there."""
    directory = _resolve(base, written)
    if not os.path.isdir(directory):
        raise ConfigError(f"repository {written!r} ({directory}) does not exist or is not a directory; give the top "
                          "folder of a git checkout (relative to this file) or a git URL", file, line)
    try:
        bare = gitrepo.run_git(["-C", directory, "rev-parse", "--is-bare-repository"]).decode().strip()
    except GitError as error:
        raise ConfigError(f"repository {written!r} ({directory}) is not a git repository ({error}); give the top "
                          "folder of a git checkout or a git URL", file, line) from None
    if bare == "true":
        raise ConfigError(f"repository {written!r} ({directory}) is a bare repository; write it as a URL "
                          f"(file://{directory}) so that the engine reads it through a mirror", file, line)
    try:
        top = gitrepo.run_git(["-C", directory, "rev-parse", "--show-toplevel"]).decode("utf-8", "surrogateescape")
    except GitError as error:
        raise ConfigError(f"repository {written!r} ({directory}) is not in a git working tree ({error}); give the "
                          "top folder of a git checkout or a git URL", file, line) from None
    top = top.rstrip("\n")
    if os.path.realpath(top) != os.path.realpath(directory):
        raise ConfigError(f"repository {written!r} ({directory}) is inside the git repository {top}, not its top "
                          f"level; give {top} and set 'pipeline' to the file's path from there", file, line)
    return directory
