"""`check --base REF`: what a change introduced, what was already there, and what it fixed.

Every checked file is read again as it was at REF, straight from git's object store (no
checkout, so the working tree and the index are never touched), evaluated with the same context
as the current files, and the two sets of findings are matched by `fingerprint.finding_key`,
which ignores lines so that an edit above a finding does not make it look new.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from pipewarden.errors import UsageError
from pipewarden.evaluation.result import Result
from pipewarden.evaluation.run import check_files
from pipewarden.load.gitrepo import GitError, run_git
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.model.finding import Finding
from pipewarden.model.fingerprint import FindingKey, finding_key
from pipewarden.model.pipeline import PipelineFile


@dataclass(frozen=True)
class Comparison:
    """The current result with every finding marked `new` or `existing`, and the fixed ones."""

    result: Result
    fixed: tuple[Finding, ...]


def compare_with_base(result: Result, ref: str, discovered: Collection[str] = ()) -> Comparison:
    """Evaluate the checked files as they were at `ref` and compare; a bad ref is a UsageError.

    Files in `discovered` (found by walking, not named) are judged as discovery judges them: one
    that was another tool's file at `ref` had no findings there."""
    files = [p.file for p in result.pipelines]
    base_files = read_files_at_ref(files, ref)
    base = check_files((), result.context, loaded=base_files, discovered=discovered)
    return mark_changes(result, base.findings)


def mark_changes(result: Result, base_findings: Iterable[Finding]) -> Comparison:
    """Match current and base findings per file as multisets of keys.

    Counting rather than set membership matters: if a rule fired once at the base and fires
    twice now with the same key, one of the two is new.
    """
    available: Counter[tuple[str, FindingKey]] = Counter((f.file, finding_key(f)) for f in base_findings)
    marked: list[Finding] = []
    current: Counter[tuple[str, FindingKey]] = Counter()
    for finding in result.findings:
        key = (finding.file, finding_key(finding))
        current[key] += 1
        if available[key] > 0:
            available[key] -= 1
            marked.append(replace(finding, change="existing"))
        else:
            marked.append(replace(finding, change="new"))
    fixed: list[Finding] = []
    for finding in base_findings:
        key = (finding.file, finding_key(finding))
        if current[key] > 0:
            current[key] -= 1
        else:
            fixed.append(replace(finding, change="fixed"))
    fixed.sort(key=Finding.sort_key)
    return Comparison(replace(result, findings=tuple(marked)), tuple(fixed))


def read_files_at_ref(files: Sequence[str], ref: str) -> list[PipelineFile]:
    """Load each file as it was at `ref`, under the same display name; absent files are skipped."""
    if not ref or ref.startswith("-"):
        # git would read a leading dash as an option, whatever we meant.
        raise UsageError(f"--base {ref!r} is not a git ref; give a branch, tag or commit such as origin/main")
    by_repo: dict[str, list[tuple[str, str]]] = {}
    tops: dict[str, str | None] = {}
    for file in files:
        real = os.path.realpath(file)
        top = _repo_top(os.path.dirname(real), tops)
        if top is None:
            raise UsageError(f"--base needs the checked files in a git repository; {file} is not in one")
        relative = os.path.relpath(real, top).replace(os.sep, "/")
        by_repo.setdefault(top, []).append((file, relative))
    loaded: dict[str, PipelineFile] = {}
    for top, entries in by_repo.items():
        commit = _resolve_commit(top, ref)
        if commit is None:
            continue  # a repository without commits yet: nothing existed at its HEAD
        contents = _read_blobs(top, [f"{commit}:{relative}" for _, relative in entries])
        for (display, _), data in zip(entries, contents):
            if data is not None:
                loaded[display] = load_pipeline_bytes(display, data)
    # Keep the order of the current run so that both evaluations see the fleet alike.
    return [loaded[f] for f in files if f in loaded]


def _repo_top(directory: str, cache: dict[str, str | None]) -> str | None:
    """The working-tree top holding `directory`: the nearest ancestor with a `.git` entry.

    Found in Python rather than with `git rev-parse` per directory because a fleet can have
    thousands of directories; a `.git` file (worktrees, submodules) counts as well as a folder.
    """
    seen: list[str] = []
    current = directory
    top: str | None = None
    while True:
        if current in cache:
            top = cache[current]
            break
        seen.append(current)
        if os.path.lexists(os.path.join(current, ".git")):
            top = current
            break
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in seen:
        cache[path] = top
    return top


def _git(top: str, args: list[str], stdin: bytes | None = None) -> bytes:
    """git's output in the repository at `top`, through load.gitrepo's runner (no prompts, a time
    limit); GitError when git fails."""
    if shutil.which("git") is None:
        raise UsageError("--base needs git on PATH; install git or drop --base")
    return run_git(["-C", top, *args], stdin=stdin)


def _resolve_commit(top: str, ref: str) -> str | None:
    """The commit `ref` names; None for `HEAD` in a repository without commits (a first commit's
    pre-commit hook compares with it: every finding is new)."""
    try:
        out = _git(top, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    except GitError:
        if ref == "HEAD" and _unborn_head(top):
            return None
        raise UsageError(
            f"--base {ref!r} is not a commit in the git repository {top}; check the name, or fetch it "
            f"first (in CI: git fetch origin <branch>, or checkout with fetch-depth: 0)"
        ) from None
    return out.decode().strip()


def _unborn_head(top: str) -> bool:
    """HEAD names a branch that has no commit yet (a fresh `git init`)."""
    try:
        _git(top, ["symbolic-ref", "--quiet", "HEAD"])
    except GitError:
        return False
    try:
        _git(top, ["rev-parse", "--verify", "--quiet", "HEAD"])
    except GitError:
        return True
    return False


def _read_blobs(top: str, specs: list[str]) -> list[bytes | None]:
    """Contents of `commit:path` objects, None where absent or not a file, in one git process."""
    if any("\n" in spec for spec in specs):
        # The batch protocol is line based; such names are rare enough to read one by one.
        return [_read_blob(top, spec) for spec in specs]
    try:
        out = _git(top, ["cat-file", "--batch"], stdin="".join(f"{s}\n" for s in specs).encode())
    except GitError as error:
        raise UsageError(f"git cannot read files in {top}: {error}") from None
    position = 0
    contents: list[bytes | None] = []
    for _ in specs:
        end = out.index(b"\n", position)
        header = out[position:end].split(b" ")
        position = end + 1
        # "<sha> <type> <size>" when found; "<spec> missing" (or "ambiguous") otherwise, and a
        # spec may itself hold spaces, so the size being a number is what tells them apart.
        if len(header) != 3 or not header[2].isdigit():
            contents.append(None)
            continue
        size = int(header[2])
        data = out[position : position + size]
        position += size + 1
        contents.append(data if header[1] == b"blob" else None)
    return contents


def _read_blob(top: str, spec: str) -> bytes | None:
    try:
        if _git(top, ["cat-file", "-t", spec]).strip() != b"blob":
            return None
        return _git(top, ["cat-file", "blob", spec])
    except GitError:
        return None
