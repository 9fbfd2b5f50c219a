"""Read files from git repositories with git itself: mirrors in a cache, blobs at a ref.

Nothing here checks anything out: a pipeline is read from the object database with
`git show REF:path`, so a report never touches a working tree and a cached mirror serves every
ref. Failures are `GitError` with git's own last line; the inventory loader adds the file and
line of the entry that caused them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

# A clone of a large repository can take a while; a hung credential helper must not hang a report.
CLONE_TIMEOUT = 900
COMMAND_TIMEOUT = 120


class GitError(Exception):
    """A git command failed; the message is git's own explanation."""


@dataclass(frozen=True)
class Blob:
    """A file in a tree: its path (from the repository root), mode and size in bytes."""

    path: str
    mode: str
    size: int


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # Never wait for a password prompt: a report runs unattended, often in CI.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"
    return env


def run_git(args: list[str], timeout: int = COMMAND_TIMEOUT, stdin: bytes | None = None) -> bytes:
    """Run git (with `stdin` as its input when given); return stdout, or raise GitError with the
    most telling line of stderr. The one way pipewarden runs git (reports, inventories, --base)."""
    try:
        done = subprocess.run(
            ["git", *args], input=stdin, capture_output=True, env=_environment(), timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH; install git to read repositories") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish within {timeout}s") from None
    if done.returncode != 0:
        raise GitError(_last_line(done.stderr) or f"git {args[0]} failed with exit code {done.returncode}")
    return done.stdout


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or [""])[0]


def default_cache_dir() -> str:
    """`$XDG_CACHE_HOME/pipewarden`, else `~/.cache/pipewarden`: pipewarden's cache directory, the
    one definition of it. It holds the git mirrors (`repos/`) and the results cache of `check` and
    `report` (evaluation/cache.py), so that a report right after a check reuses both."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pipewarden")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def mirror_dir(url: str, cache_dir: str) -> str:
    """Where the mirror of `url` lives: a hash keeps URLs apart, the base name keeps it readable."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    base = _UNSAFE.sub("-", url.rstrip("/").rsplit("/", 1)[-1])[:40] or "repo"
    return os.path.join(cache_dir, "repos", f"{digest}-{base}")


def update_mirror(url: str, cache_dir: str) -> tuple[str, str | None]:
    """Clone `url` as a bare mirror into the cache, or fetch it when already there.

    Returns the mirror's git dir and a note when a fetch failed but an older copy could be
    used (a report from slightly stale data beats no report; the note says so).
    """
    target = mirror_dir(url, cache_dir)
    if os.path.isdir(target):
        try:
            run_git(["--git-dir", target, "fetch", "--prune", "--quiet", "origin"], CLONE_TIMEOUT)
        except GitError as error:
            return target, f"could not fetch {url} ({error}); using the cached copy"
        return target, None
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Clone next to the target and rename: an interrupted clone never looks like a finished one.
    scratch = tempfile.mkdtemp(prefix=".clone-", dir=os.path.dirname(target))
    try:
        run_git(["clone", "--mirror", "--quiet", "--", url, os.path.join(scratch, "repo.git")], CLONE_TIMEOUT)
        try:
            os.rename(os.path.join(scratch, "repo.git"), target)
        except OSError:
            if not os.path.isdir(target):  # another run won the race: its mirror is as good
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target, None


def git_args(repo: str, bare: bool) -> list[str]:
    """Global options that point git at a bare mirror or at a local checkout."""
    return ["--git-dir", repo] if bare else ["-C", repo]


def resolve_commit(repo: str, bare: bool, ref: str) -> str:
    """The commit `ref` names, or GitError (unknown ref, not a repository)."""
    if ref.startswith("-"):
        raise GitError(f"ref {ref!r} may not start with '-'")
    out = run_git([*git_args(repo, bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    return out.decode("ascii").strip()


def find_blobs(repo: str, bare: bool, commit: str, paths: list[str]) -> dict[str, Blob]:
    """Which of `paths` (from the repository root) exist at `commit`, with their mode and size."""
    out = run_git([*git_args(repo, bare), "ls-tree", "-r", "-l", "--full-tree", commit, "--", *paths])
    found: dict[str, Blob] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) == 4 and parts[1] == "blob":
            found[path] = Blob(path, parts[0], int(parts[3]) if parts[3].isdigit() else 0)
    return found


def show(repo: str, bare: bool, commit: str, path: str) -> bytes:
    """The content of `path` (from the repository root) at `commit`."""
    return run_git([*git_args(repo, bare), "show", f"{commit}:{path}"])


def toplevel_prefix(path: str) -> str:
    """The path of a local checkout directory relative to its repository's root ('' at the root).

    An inventory may point into a monorepo; `git show REF:path` wants paths from the root.
    """
    out = run_git(["-C", path, "rev-parse", "--show-prefix"])
    return out.decode("utf-8", "replace").strip()
