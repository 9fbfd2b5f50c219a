"""The git poller: each new head of a pipeline's branch starts one execution (engine.md, "New
commits").

Each round (`Poller.poll_once`) reads, for every pipeline, the head of its branch and decides:

- **first sight** (nothing of the pipeline released yet): release the head;
- **a new head**: release it, once. Commits pushed together are one new head (only the newest is
  released); a force-push releases the new head only when no execution of the pipeline ever had
  that commit, so a force-push back to an older released commit releases nothing;
- **no change**: nothing.

"Released" is read from the store (`EngineStore.released`: an execution of that commit exists, or
it is the pipeline's last released commit), never guessed from memory, so a restarted poller (a
new `Poller` on the same store) never releases a commit twice. The one thing remembered is, per
pipeline, the last head the store answered released for: while it stays the head, the store is not
asked again, which is safe because a released commit stays released (no execution is ever deleted
or changes its commit; see `_Seen.released`). Any other head, a new one or one back after a
force-push, is asked of the store. The `start` callback creates the execution with trigger `poll`,
which marks the commit released in the same transaction (`EngineClient.start_polled`); when it
fails before that, the next round asks the store again and tries again.

A round over unchanged repositories runs no git and reads nothing from the store (the poller
shares the server's process, and its GIL, with the release engine). The head is read with git
(`repository_git_dir`, `branch_head`) only when the fingerprint of the files git rewrites when the
branch moves, is created, deleted or packed, or the repository is replaced (`refs_fingerprint`,
`repository_fingerprint`: `os.stat` and the few bytes of the loose ref) differs from the one taken
just before the last read, and at least every `GIT_RECHECK_S` of round time whatever it says: the
bound on a change no fingerprint catches. A mirror is still fetched every round; a fetch that moves
a ref rewrites these files like any other update.

Beside the decision, a round records the pipeline's source once (`set_pipeline_source`) and, when
the head's pipeline file is valid, the newest valid definition with its team and org node
(`set_definition`: what status shows). An invalid file at the head is still released (its policy
gate fails it, with the findings) but never replaces the stored valid definition. A branch that
disappears writes one `branch_missing` event per disappearance; when it comes back, polling goes
on as before. One pipeline that fails (its repository deleted, git failing) is logged and the
others are polled all the same; a repository that cannot be read, or a mirror whose fetch fails, is
logged once when it starts and once when it ends, not every round.

Git and the store block, so that work runs in threads (`asyncio.to_thread`), one thread per
repository at a time (pipelines of one repository share its mirror and are read in turn). A round
first looks at the fingerprints of all settled pipelines of local repositories in one thread
(`Poller._unchanged`); only the others take a thread each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipewarden.engine.domain.events import draft
from pipewarden.engine.setup import ResolvedPipeline
from pipewarden.engine.store import EngineStore
from pipewarden.errors import ConfigError, PolicyError
from pipewarden.load.gitrepo import CLONE_TIMEOUT, GitError, mirror_dir, run_git, update_mirror
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.load.yamlsafe import MAX_BYTES
from pipewarden.orgs.tree import load_org_tree_cached
from pipewarden.policy.catalog import load_catalog

log = logging.getLogger(__name__)

StartFn = Callable[[str, str], Awaitable[object]]
"""`start(pipeline, commit)`: start an execution of `commit` with trigger `poll` (the server passes
`EngineClient.start_polled`). It must mark the commit released when it creates the execution."""

Clock = Callable[[], datetime]

MAX_PARALLEL_REPOSITORIES = 4
"""Repositories read at once in a round: a slow fetch of one mirror does not hold up the others,
and a round never takes more threads than this from the default executor."""

GIT_RECHECK_S = 30.0
"""A pipeline's head is read with git at least this often (in round time, `now`), even when its
fingerprint has not changed: the bound on the delay of a change no fingerprint sees (see
`refs_fingerprint`). Each pipeline has its own period between half of it and all of it
(`_recheck_s`), so that pipelines first read together are not all read again in the same round."""

Fingerprint = tuple[object, ...]
"""What `os.stat` (and a few small files) say of the files git changes when a ref moves; compared
with `==`, never interpreted."""


@dataclass
class _Seen:
    """What this poller remembers of one pipeline between rounds (only to save work and to keep
    events single: whether a head not yet seen released must be released is the store's answer)."""

    source_recorded: bool = False
    read_at: str | None = None
    """The head whose pipeline file was last read (a file is read once per head)."""
    missing: bool | None = None
    """Whether the branch is missing now; None until this poller has looked once."""
    unreadable: str | None = None
    """Why the repository cannot be read, while it cannot (logged once, not every round)."""
    released: str | None = None
    """The last head `EngineStore.released` answered True for: while it is the head, the store is
    not asked again. Safe because `released` is monotonic (store.py): executions are never deleted
    and their pipeline and commit never change, and the poller's and `release`'s last released
    commit is written with an execution of it. (Only `set_last_commit`, which no engine code calls,
    marks a commit without an execution; a later commit would unmark it in the store, not here.)
    Any other head, new or back after a force-push, is asked of the store."""
    refs_print: Fingerprint | None = None
    """The refs' fingerprint taken just before git last read `head` (None: read with git next
    round, after a failure, or when the fingerprint could not be taken)."""
    head: str | None = None
    """The branch head git read then (None: the branch was missing)."""
    git_read: datetime | None = None
    """The round time of that read (the next comes `recheck_s` later at the latest)."""
    recheck_s: float = GIT_RECHECK_S


class Poller:
    """Polls the branch heads of `pipelines` (see the module docstring).

    `org_config` (the org tree's directory) and `policies` (extra rule folders, whose rule ids the
    org tree may name) give the org node of each pipeline's team for `set_definition`; without an
    org config the org is None.
    """

    def __init__(self, store: EngineStore, pipelines: Sequence[ResolvedPipeline], start: StartFn, *,
                 org_config: Path | None = None, policies: Sequence[Path] = ()) -> None:
        self.store = store
        self.pipelines = tuple(pipelines)
        self.start = start
        self.org_config = org_config
        self.policies = tuple(policies)
        self._seen: dict[str, _Seen] = {p.name: _Seen(recheck_s=_recheck_s(p.name)) for p in self.pipelines}
        self._git_dirs: dict[str, tuple[Fingerprint, str, str | None]] = {}
        """Per repository path: its `repository_fingerprint` when resolved, its git dir and its
        common dir (`common_git_dir`); resolved again when the fingerprint changes."""
        self._mirror_notes: dict[str, str] = {}
        """Per mirror, the note of its last failed fetch (logged once, not every round)."""
        # Rounds never overlap (run() and a caller's poll_once() could otherwise race on _seen).
        self._round = asyncio.Lock()

    # ------------------------------------------------------------ rounds

    async def poll_once(self, now: datetime) -> list[tuple[str, str]]:
        """One round at `now` (the time of its store writes and events). Returns the (pipeline,
        commit) pairs whose execution `start` was called for and returned, in the order of
        `pipelines`. Never raises for one pipeline's failure: it is logged and the round goes
        on."""
        async with self._round:
            by_repo: dict[str, list[ResolvedPipeline]] = {}
            for pipeline in self.pipelines:
                by_repo.setdefault(pipeline.repo, []).append(pipeline)
            # One thread looks at every settled pipeline of a local repository (a thread each would
            # cost more than their stats); only the others go the whole way. A mirror is fetched
            # first, every round, so never skipped here.
            local = [p for group in by_repo.values() if not any(q.url for q in group) for p in group]
            unchanged = await asyncio.to_thread(self._unchanged, local, now) if local else set()
            limit = asyncio.Semaphore(MAX_PARALLEL_REPOSITORIES)
            started: dict[str, str] = {}

            async def poll_repo(group: list[ResolvedPipeline]) -> None:
                group = [p for p in group if p.name not in unchanged]
                if not group:
                    return
                async with limit:
                    try:
                        if any(p.url for p in group):  # a thread for nothing costs as much as the stats
                            await asyncio.to_thread(self._refresh_mirror, group)
                    except Exception:  # the cached copy (if any) is read all the same
                        log.exception("refreshing the mirror %s failed", group[0].repo)
                    for pipeline in group:
                        commit = await self._poll_pipeline(pipeline, now)
                        if commit is not None:
                            started[pipeline.name] = commit

            await asyncio.gather(*(poll_repo(group) for group in by_repo.values()))
            return [(p.name, started[p.name]) for p in self.pipelines if p.name in started]

    async def run(self, stop: asyncio.Event, interval_s: float, clock: Clock) -> None:
        """Poll every `interval_s` seconds (from the start of one round to the start of the next,
        or right after a round that took longer) until `stop` is set; a round that fails as a
        whole is logged and the next one comes all the same."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            began = loop.time()
            try:
                await self.poll_once(clock())
            except Exception:
                log.exception("git poll round failed; polling goes on")
            remaining = max(0.0, interval_s - (loop.time() - began))
            try:
                await asyncio.wait_for(stop.wait(), timeout=remaining)
            except TimeoutError:
                pass

    async def _poll_pipeline(self, pipeline: ResolvedPipeline, now: datetime) -> str | None:
        """The commit started for `pipeline` in this round, or None (nothing new, or a failure,
        which is logged)."""
        seen = self._seen[pipeline.name]
        try:
            commit = await asyncio.to_thread(self._observe, pipeline, now)
        except GitError as error:
            # The repository is gone or cannot be read (moved away, permissions, a broken
            # repository): said once, not with a traceback every round, until it reads again.
            if seen.unreadable != str(error):
                log.warning("cannot read the repository %s of pipeline %s (%s); polling goes on",
                            pipeline.repo, pipeline.name, error)
            seen.unreadable = str(error)
            return None
        except Exception:
            log.exception("polling pipeline %s (repository %s, branch %s) failed",
                          pipeline.name, pipeline.repo, pipeline.branch)
            return None
        if seen.unreadable is not None:
            log.warning("the repository %s of pipeline %s can be read again", pipeline.repo, pipeline.name)
            seen.unreadable = None
        if commit is None:
            return None
        try:
            await self.start(pipeline.name, commit)
        except Exception:
            # Nothing marked it released (or the store has it and recovery starts its workflow):
            # the next round decides again.
            log.exception("starting an execution of %s at %s failed", pipeline.name, commit)
            return None
        log.info("released %s at %s (new head of %s)", pipeline.name, commit, pipeline.branch)
        return commit

    # ------------------------------------------------------------ one pipeline (in a thread)

    def _observe(self, pipeline: ResolvedPipeline, now: datetime) -> str | None:
        """Read the pipeline's head, record what there is to record, and give the head when it is
        to be released. GitError when the repository cannot be read."""
        seen = self._seen[pipeline.name]
        if not seen.source_recorded:
            self.store.set_pipeline_source(pipeline.name, repo=pipeline.repo, branch=pipeline.branch,
                                           path=pipeline.path, now=now)
            seen.source_recorded = True
        git_dir, head = self._read_head(pipeline, seen, now)
        if head is None:
            self._branch_missing(pipeline, seen, now)
            return None
        if seen.missing:
            log.info("branch %s of %s is back at %s", pipeline.branch, pipeline.name, head)
        seen.missing = False
        if seen.read_at != head:
            self._read_definition(pipeline, git_dir, head, now)
            seen.read_at = head
        if seen.released == head:
            return None  # released stays released (_Seen.released)
        if self.store.released(pipeline.name, head):
            seen.released = head
            return None
        return head

    def _unchanged(self, pipelines: Sequence[ResolvedPipeline], now: datetime) -> set[str]:
        """The names of `pipelines` this round has nothing to do for, the whole of `_observe` then
        being a no-op: the head git last read was decided (released, its file read, or the branch
        reported missing), git's next read is not due, and neither fingerprint changed since.
        Changes nothing; anything in doubt is left to `_observe`."""
        names = set()
        for pipeline in pipelines:
            try:
                if self._settled(pipeline, now):
                    names.add(pipeline.name)
            except Exception:  # a round never fails for one pipeline: _observe says what is wrong
                log.debug("looking at the fingerprints of %s failed", pipeline.name, exc_info=True)
        return names

    def _settled(self, pipeline: ResolvedPipeline, now: datetime) -> bool:
        seen = self._seen[pipeline.name]
        known = self._git_dirs.get(pipeline.repo)
        if (not seen.source_recorded or seen.unreadable is not None or seen.refs_print is None
                or _git_due(seen, now) or known is None or known[2] is None):
            return False
        if seen.head is None:
            if not seen.missing:
                return False  # its branch_missing is still to be written
        elif seen.missing is not False or seen.read_at != seen.head or seen.released != seen.head:
            return False
        path_print = _fingerprint_or_none(repository_fingerprint, pipeline.repo)
        if path_print is None or path_print != known[0]:
            return False
        return _fingerprint_or_none(refs_fingerprint, known[1], known[2], pipeline.branch) == seen.refs_print

    def _read_head(self, pipeline: ResolvedPipeline, seen: _Seen, now: datetime) -> tuple[str, str | None]:
        """The repository's git dir and the branch head: git reads it when the refs' fingerprint
        changed since its last read, or that read is due (`_git_due`), else it is the head git
        read then. GitError as `repository_git_dir` and `branch_head` raise it."""
        due = _git_due(seen, now)
        before, seen.refs_print = seen.refs_print, None  # kept only when this read succeeds
        # Each fingerprint is taken before git reads: a change after it differs next round.
        path_print = _fingerprint_or_none(repository_fingerprint, pipeline.repo)
        known = self._git_dirs.get(pipeline.repo)
        if due or known is None or path_print is None or known[0] != path_print:
            self._git_dirs.pop(pipeline.repo, None)
            git_dir = repository_git_dir(pipeline.repo)
            known = (path_print or (), git_dir, common_git_dir(git_dir))
            if path_print is not None:
                self._git_dirs[pipeline.repo] = known
        _, git_dir, common_dir = known
        refs_print = (None if common_dir is None or path_print is None else
                      _fingerprint_or_none(refs_fingerprint, git_dir, common_dir, pipeline.branch))
        if not due and refs_print is not None and refs_print == before:
            seen.refs_print = refs_print
            return git_dir, seen.head
        head = branch_head(git_dir, pipeline.branch)
        seen.refs_print, seen.head, seen.git_read = refs_print, head, now
        return git_dir, head

    def _branch_missing(self, pipeline: ResolvedPipeline, seen: _Seen, now: datetime) -> None:
        if seen.missing:
            return  # reported when it disappeared
        if seen.missing is None:
            # This poller's first look. A poller restarted while the branch was gone must not
            # report the same disappearance again: it was reported when the pipeline's latest
            # branch_missing is newer than its latest execution start. (A branch that came back
            # at a released commit and vanished again across a restart is taken as reported.)
            latest = self.store.latest_event(pipeline=pipeline.name, types=["branch_missing", "execution_started"])
            if latest is not None and latest.type == "branch_missing" and latest.data.get("branch") == pipeline.branch:
                seen.missing = True
                return
        self.store.append_event(draft("branch_missing", time=now, pipeline=pipeline.name,
                                      data={"branch": pipeline.branch}))
        seen.missing = True
        log.warning("branch %s of pipeline %s is missing in %s; polling goes on",
                    pipeline.branch, pipeline.name, pipeline.repo)

    def _read_definition(self, pipeline: ResolvedPipeline, git_dir: str, head: str, now: datetime) -> None:
        """Record the head's pipeline file as the newest valid definition when it is valid (the
        checker's loader) and still names this pipeline; anything else keeps the stored one."""
        record = self.store.pipeline(pipeline.name)
        if record is not None and record.definition_commit == head:
            return  # recorded before a restart
        document = read_definition(git_dir, head, pipeline.path)
        if document is None:
            log.warning("%s at %s of %s is missing, too large or invalid; the stored definition stays",
                        pipeline.path, head[:12], pipeline.name)
            return
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        if metadata.get("name") != pipeline.name:
            # The policy gate fails such a commit (name_changed): it is not this pipeline's definition.
            log.warning("%s at %s names the pipeline %r, not %r; the stored definition stays",
                        pipeline.path, head[:12], metadata.get("name"), pipeline.name)
            return
        team = metadata.get("team") if isinstance(metadata.get("team"), str) else None
        self.store.set_definition(pipeline.name, document, commit=head, team=team, org=self._org_of(team, now),
                                  now=now)

    def _org_of(self, team: str | None, now: datetime) -> str | None:
        """The org node `team` belongs to in the org tree (None without an org config, for a team in
        no node, or while the org config cannot be read: that is logged)."""
        if self.org_config is None or team is None:
            return None
        try:
            catalog = load_catalog(tuple(str(p) for p in self.policies))
            tree = load_org_tree_cached(str(self.org_config), catalog, now.astimezone(UTC).date())
        except (ConfigError, PolicyError) as error:
            log.warning("org config %s cannot be read (%s); org of team %s unknown", self.org_config, error, team)
            return None
        return tree.node_for_team(team)

    def _refresh_mirror(self, group: Sequence[ResolvedPipeline]) -> None:
        """Fetch the mirror the pipelines of one repository share, when it is one (a `url`)."""
        url = next((p.url for p in group if p.url), None)
        if url is None:
            return
        try:
            note = refresh_mirror(url, group[0].repo)
        except GitError as error:
            note = f"mirror of {url} at {group[0].repo} cannot be made ({error})"
        # A fetch that keeps failing (the server down for an hour) is said once, and its end too.
        before = self._mirror_notes.pop(group[0].repo, None)
        if note is not None:
            self._mirror_notes[group[0].repo] = note
            if note != before:
                log.warning("%s", note)
        elif before is not None:
            log.warning("the mirror of %s is fetched again", url)


def _git_due(seen: _Seen, now: datetime) -> bool:
    """Whether git must read the head whatever the fingerprints say: never read, read
    `seen.recheck_s` ago, or in the future (the clock went back)."""
    if seen.git_read is None:
        return True
    return not 0 <= (now - seen.git_read).total_seconds() < seen.recheck_s


def _recheck_s(name: str) -> float:
    """The pipeline's own period of `GIT_RECHECK_S` / 2 to `GIT_RECHECK_S`, the same in every
    process (a hash of its name, not Python's salted `hash`)."""
    return GIT_RECHECK_S * (0.5 + (zlib.crc32(name.encode("utf-8")) % 1000) / 2000)


# ---------------------------------------------------------------- git (blocking)


def repository_git_dir(repo: str) -> str:
    """The git dir of the repository whose top level (or bare directory) is `repo`.

    GitError when `repo` is gone or is not such a top level: with its `.git` deleted, git run in
    it would find an enclosing repository (a checkout the state dir lives in, say) and the poller
    would read that one's branches.
    """
    out = run_git(["-C", repo, "rev-parse", "--absolute-git-dir", "--is-bare-repository", "--show-cdup"])
    # Bare: git dir and "true" (no work tree, so no cdup line); a checkout's top level: git dir,
    # "false" and an empty cdup line; anywhere below it, the cdup line is "../...".
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) == 2 and lines[1] == "true" and os.path.samefile(lines[0], repo):
        return lines[0]
    if len(lines) == 3 and lines[1] == "false" and lines[2] == "":
        return lines[0]
    raise GitError(f"{repo} is not the top level of a git repository")


def common_git_dir(git_dir: str) -> str | None:
    """Where the refs of `git_dir` live: the main repository's git dir for a linked worktree (its
    `commondir` file, as git reads it), else `git_dir` itself; None when that cannot be read."""
    try:
        with open(os.path.join(git_dir, "commondir"), "rb") as file:
            common = os.fsdecode(file.read(_SMALL_FILE).strip())
    except FileNotFoundError:
        return git_dir
    except OSError:
        return None
    return os.path.normpath(os.path.join(git_dir, common))


_SMALL_FILE = 64 * 1024
"""Bytes of a ref file or reftable list read into a fingerprint (both are far smaller)."""


def _stat(path: str) -> tuple[object, ...]:
    """A file's identity and version: inode, size, mtime and ctime (git replaces a file it changes
    by renaming a new one over it, so its inode changes too); a directory's identity only (its
    times change whenever anything in it is created, a lock file or FETCH_HEAD say). () when there
    is no such file: missing is a value too. Any other OSError is raised."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    if stat.S_ISDIR(st.st_mode):
        return ("dir", st.st_dev, st.st_ino)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _content(path: str) -> bytes | None:
    """The first bytes of a small file, None when it is missing (or a directory: `refs/heads/A`
    while only branches `A/...` exist; its stat tells when that changes)."""
    try:
        with open(path, "rb") as file:
            return file.read(_SMALL_FILE)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def repository_fingerprint(repo: str) -> Fingerprint:
    """What says that the repository at `repo` was deleted or replaced, or grew or lost its `.git`
    (a directory, or the file of a linked worktree): then its git dir is resolved again."""
    return (_stat(repo), _stat(os.path.join(repo, ".git")))


def refs_fingerprint(git_dir: str, common_dir: str, branch: str) -> Fingerprint | None:
    """A fingerprint of everything git changes when `refs/heads/BRANCH` moves, is created, deleted
    or packed, or the repository is replaced: the git dirs themselves, `HEAD`, the loose ref (its
    stat and its content: the commit itself), `packed-refs`, and `reftable/tables.list` (stat and
    content: a new table's name on every update) of the reftable format. None when the branch is a
    symbolic ref (its target moves it: always read with git).

    Git writes each of these files anew and renames it into place (a lock file renamed over it),
    so an update gives a new inode, and a new mtime and ctime unless within one tick of the file
    system's clock; a loose ref or reftable list also gets a new content. What could escape it:
    `packed-refs` (stat only: it can be large) written, looked at by a round, and rewritten twice
    more to the same size within one tick, the last time on the inode the first one freed; or a
    network file system whose cached attributes lag behind the files (NFS caches them for up to a
    minute; the contents read here are fresh, as open() revalidates them). The poller's bound for
    those is `GIT_RECHECK_S`.
    """
    loose = os.path.join(common_dir, "refs", "heads", *branch.split("/"))
    content = _content(loose)
    if content is not None and content.startswith(b"ref:"):
        return None
    reftable = os.path.join(common_dir, "reftable", "tables.list")
    return (git_dir, _stat(git_dir), common_dir, _stat(common_dir), _stat(os.path.join(git_dir, "HEAD")),
            _stat(loose), content, _stat(os.path.join(common_dir, "packed-refs")),
            _stat(reftable), _content(reftable))


def _fingerprint_or_none(take: Callable[..., Fingerprint | None], *args: str) -> Fingerprint | None:
    """`take(*args)`, or None (read with git) when a file cannot be looked at (permissions, say)."""
    try:
        return take(*args)
    except (OSError, ValueError):  # ValueError: a NUL in a path (git then says what is wrong)
        return None


def branch_head(git_dir: str, branch: str) -> str | None:
    """The commit `refs/heads/BRANCH` points at, or None when the branch does not exist.

    `for-each-ref` rather than `rev-parse --verify`: it answers a missing branch with no output and
    fails only when the repository cannot be read, so a broken repository is never taken for a
    deleted branch. Its pattern also matches refs below `refs/heads/BRANCH/`, hence the exact
    comparison.
    """
    ref = f"refs/heads/{branch}"
    out = run_git(["--git-dir", git_dir, "for-each-ref", "--format=%(objectname) %(refname)", ref])
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        commit, _, name = line.partition(" ")
        if name == ref:
            return commit
    return None


def read_definition(git_dir: str, commit: str, path: str) -> dict[str, Any] | None:
    """The loader's dict of `path` at `commit` when the file is there and valid (the checker's
    loader: safe YAML, the schema, the semantic checks), else None. A blob over the loader's
    size limit is not read at all."""
    spec = f"{commit}:{path}"
    try:
        size = int(run_git(["--git-dir", git_dir, "cat-file", "-s", spec]).decode("ascii").strip())
        if size > MAX_BYTES:
            return None
        source = run_git(["--git-dir", git_dir, "show", spec])
    except GitError:
        return None  # no such file at that commit
    loaded = load_pipeline_bytes(path, source)
    if not loaded.valid or not isinstance(loaded.document, dict):
        return None
    return loaded.document


def refresh_mirror(url: str, repo: str) -> str | None:
    """Bring the bare mirror `repo` of `url` up to date; a note when the fetch failed and the
    cached copy is read (as `update_mirror` says). A mirror laid out as `update_mirror` lays them
    (CACHE/repos/NAME) goes through it, which also clones one that has vanished; any other is
    fetched in place."""
    real = os.path.realpath(repo)
    cache_dir = os.path.dirname(os.path.dirname(real))
    if os.path.realpath(mirror_dir(url, cache_dir)) == real:
        return update_mirror(url, cache_dir)[1]
    try:
        run_git(["--git-dir", repo, "fetch", "--prune", "--quiet", "origin"], CLONE_TIMEOUT)
    except GitError as error:
        return f"could not fetch {url} ({error}); using the cached copy"
    return None
