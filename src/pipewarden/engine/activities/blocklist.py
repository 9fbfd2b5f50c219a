"""What the `blocklist` gate judges, gathered (engine.md, "Gates"; the gate is
`domain/gates/blocklist.py`):

- the blocklist entries of every node on the chain of the artifact's team (its own
  `pipeline.yaml`'s `metadata.team`; a team in no node belongs to the root), from the engine's
  org config as it is on disk now (`load_org_tree_cached`: read again when its files change,
  parsed again only then). An org config that does not load is the gate's `config_error` (file and
  line), as for the policy gate;
- the artifact's manifest, from its record (a record written before the manifest existed reads as
  an empty one);
- for every ref the git entries name, whether the pipeline's repository knows it and whether the
  artifact's commit is it or descends from it (`git merge-base --is-ancestor`). Refs are resolved
  in one `git cat-file --batch-check` per evaluation (a ref that is added later is seen at the next
  one); ancestry between two commits never changes, so it is kept in a bounded cache.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipewarden.engine.activities.artifacts import GIT_TIMEOUT_SECONDS, ArtifactRecord
from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.gates import blocklist as blocklist_gate
from pipewarden.engine.domain.gates.base import GateResult
from pipewarden.engine.domain.gates.blocklist import Ancestry, Entry, entries_of, refs_of
from pipewarden.engine.domain.manifest import Package
from pipewarden.errors import ConfigError, PolicyError
from pipewarden.orgs.tree import load_org_tree_cached
from pipewarden.policy.catalog import load_catalog

_ANCESTRY_CACHE_SIZE = 4096


class GitObservationError(Exception):
    """The repository cannot be asked (gone, not a repository, the artifact's commit not in it)."""


@dataclass(frozen=True, slots=True)
class Entries:
    """The chain's entries, or why they cannot be read (`error`: the file and line)."""

    entries: tuple[Entry, ...] = ()
    error: str | None = None


def chain_entries(org_config: str | None, policies: Sequence[str], team: str | None, now: datetime) -> Entries:
    """The blocklist entries of `team`'s org chain, root first (none without an org config)."""
    if org_config is None:
        return Entries()
    try:
        catalog = load_catalog(tuple(str(p) for p in policies))
        tree = load_org_tree_cached(str(org_config), catalog, now.astimezone(UTC).date())
    except (ConfigError, PolicyError) as error:
        return Entries(error=str(error))
    node = tree.node_for_team(team) or tree.root
    found: list[Entry] = []
    for org in tree.chain(node):
        found += entries_of(org.blocklist, org.name)
    return Entries(tuple(found))


def team_of(record: ArtifactRecord | None) -> str | None:
    """The team the artifact's own definition names."""
    document = record.document if record is not None else None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    team = metadata.get("team") if isinstance(metadata, dict) else None
    return team if isinstance(team, str) else None


def manifest_of(record: ArtifactRecord) -> list[Package]:
    """The manifest an artifact record keeps; InvalidValue when a package in it is malformed."""
    return [Package.from_json(raw) for raw in record.packages]


def _git(repo: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        return subprocess.run(["git", "-C", repo, *args], input=stdin, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_SECONDS, check=False,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitObservationError(f"git {args[0]} in {repo}: {error}") from None


class GitAncestry:
    """Answers "is the commit REF or a descendant of it" for the gate, with a bounded cache of the
    answers between two commits (they never change). Thread-safe."""

    def __init__(self, size: int = _ANCESTRY_CACHE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[str, str, str], bool] = OrderedDict()

    def observe(self, repo: str | None, commit: str, refs: Sequence[str]) -> dict[str, Ancestry]:
        """`Ancestry` of each ref. GitObservationError when the repository cannot be asked (also
        when it is not known: None)."""
        if not refs:
            return {}
        if not repo:  # never "": `git -C ""` would ask whatever repository the worker runs in
            raise GitObservationError("the pipeline's repository is not known")
        resolved = self._resolve(repo, [commit, *refs])
        if resolved[0] is None:
            raise GitObservationError(f"commit {commit} is not in the repository {repo}")
        answers: dict[str, Ancestry] = {}
        for ref, sha in zip(refs, resolved[1:], strict=True):
            answers[ref] = Ancestry(False) if sha is None else Ancestry(True, self._descends(repo, commit, sha))
        return answers

    @staticmethod
    def _resolve(repo: str, refs: Sequence[str]) -> list[str | None]:
        """The commit each ref names (None: unknown, ambiguous or not a commit), in one git call."""
        # Refs with whitespace cannot go through the batch protocol (nor name a git object); refs
        # starting with "-" are never taken as options there. Both read as unknown.
        queried = [ref for ref in refs if ref and not any(c.isspace() for c in ref)]
        done = _git(repo, ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
                    stdin="".join(f"{ref}^{{commit}}\n" for ref in queried))
        if done.returncode != 0:
            raise GitObservationError(f"cannot read the repository {repo}: "
                                      f"{done.stderr.strip() or f'git exited {done.returncode}'}")
        lines = done.stdout.splitlines()
        if len(lines) != len(queried):
            raise GitObservationError(f"git cat-file in {repo} answered {len(lines)} lines for {len(queried)} refs")
        answers = dict(zip(queried, lines, strict=True))
        shas: list[str | None] = []
        for ref in refs:
            parts = answers.get(ref, "").split()
            shas.append(parts[0] if len(parts) == 2 and parts[1] == "commit" else None)
        return shas

    def _descends(self, repo: str, commit: str, ancestor: str) -> bool:
        key = (repo, ancestor, commit)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        done = _git(repo, ["merge-base", "--is-ancestor", ancestor, commit])
        if done.returncode not in (0, 1):
            raise GitObservationError(f"git merge-base in {repo}: {done.stderr.strip() or done.returncode}")
        answer = done.returncode == 0
        with self._lock:
            self._known[key] = answer
            while len(self._known) > self._size:
                self._known.popitem(last=False)
        return answer


def judge(entries: Entries, record: ArtifactRecord | None, *, repo: str | None, commit: str, now: datetime,
          git: GitAncestry) -> GateResult:
    """The gate's result for the artifact of `commit` (its record `record`), before overrides."""
    if entries.error is not None:
        return blocklist_gate.evaluate([], [], {}, now=now, commit=commit, config_error=entries.error)
    packages: list[Package] = []
    no_manifest: str | None = None
    if record is None:
        no_manifest = f"the record of artifact {commit[:12]} (its manifest) is missing"
    else:
        try:
            packages = manifest_of(record)
        except InvalidValue as error:
            no_manifest = f"the manifest of artifact {commit[:12]} cannot be read: {error}"
    try:
        ancestry = git.observe(repo, commit, refs_of(entries.entries))
    except GitObservationError as error:
        return blocklist_gate.evaluate(entries.entries, packages, {}, now=now, commit=commit, source_error=str(error),
                                       no_manifest=no_manifest)
    return blocklist_gate.evaluate(entries.entries, packages, ancestry, now=now, commit=commit,
                                   no_manifest=no_manifest)
