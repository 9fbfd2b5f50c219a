"""The release engine's configuration (`kind: EngineConfig`, engine.md) as typed values.

`load.engine_config.load_engine_config(path)` reads and validates the file and makes these; every
path in them is already resolved against the file's directory. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_POLL_GIT_SECONDS = 30
DEFAULT_POLL_GATES_SECONDS = 10


@dataclass(frozen=True, slots=True)
class EnginePipeline:
    """One entry of `pipelines:`.

    `repo`: an absolute path to the top level of a local git repository, or a git URL as written.
    `branch` / `pipeline` / `name`: None when the entry leaves them to their defaults (the branch
    from `source.branch` of the file at the repository's HEAD; the file by the inventory's
    discovery order; the name from the file's `metadata.name` when the engine first reads it).
    `line`: the entry's line in the config file, for messages.
    """

    repo: str
    branch: str | None = None
    pipeline: str | None = None
    name: str | None = None
    line: int = 1


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """A loaded EngineConfig.

    `path`: the file it came from (absolute). `org_config`: the org tree's directory or None
    (every rule at its catalog default). `policies`: extra policy folders. `store`: `"sqlite"`
    (engine.db in the state dir) or a database URL. `prometheus_url`: None when not configured
    (a `source: prometheus` reference then waits with code `source_error`). Poll intervals are in
    seconds.
    """

    path: Path
    pipelines: tuple[EnginePipeline, ...]
    org_config: Path | None = None
    policies: tuple[Path, ...] = ()
    store: str = "sqlite"
    prometheus_url: str | None = None
    poll_git_seconds: int = DEFAULT_POLL_GIT_SECONDS
    poll_gates_seconds: int = DEFAULT_POLL_GATES_SECONDS
