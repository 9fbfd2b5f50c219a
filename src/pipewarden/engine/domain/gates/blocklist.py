"""`blocklist`: no blocklist entry of the pipeline team's org chain matches the artifact
(engine.md, "Gates"; org-config.md, "Blocklist").

The activity gathers the observations: the entries of every node on the chain (added up, root
first), the artifact's manifest, and for each ref an entry names (`ref` and `fixed_by`) what the
pipeline's repository says of it (`Ancestry`). This module judges:

- A package entry `{name, versions, reason, ecosystem?}` matches a manifest package of that name
  (normalised for the package's ecosystem: PEP 503 for pypi, lowercase for npm; any ecosystem when
  the entry gives none) whose version is in the PEP 440 specifier set `versions`, pre-releases
  included (`contains(..., prereleases=True)`); an entry without `versions` (or with `*`) matches every version,
  and a version that cannot be parsed matches (the safe reading). PEP 440's own rule still holds:
  `<1.4.2` does not hold the pre-releases of 1.4.2 itself (`1.4.2rc1`); `<=1.4.2,!=1.4.2` does.
- A git entry `{ref, reason, fixed_by?}` matches when the artifact's commit is `ref` or descends
  from it, unless it is `fixed_by` or descends from it. A ref unknown to the repository matches
  nothing and is noted (inputs `unknown_refs`, and the reason); an unknown `fixed_by` fixes
  nothing, so its entry still matches when the commit descends from `ref`.

Any match is FAIL, `blocked_package` when a package entry matches, else `blocked_commit`, listing
every match with its reason. Without data the gate waits, never passes: `config_error` while the
org config cannot be read (file and line), `source_error` while the repository cannot be asked
(unless a package entry matches: that is certain, and fails), `no_manifest` when the artifact's
record is gone and there are package entries to judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from pipewarden.engine.domain.gates.base import FAIL, PASS, WAIT, GateResult, clock
from pipewarden.engine.domain.manifest import Package, normalise_name

NAME = "blocklist"
ANY_VERSION = "*"
"""`versions: "*"` matches every version, as no `versions` does (the org config loader allows it)."""

# Matches listed in the reason; all of them are in the event's inputs.
_REASON_MATCHES = 5


@dataclass(frozen=True, slots=True)
class PackageEntry:
    """A package entry; `versions` None matches every version, `ecosystem` None any ecosystem.
    `org` is the org node that lists it (named in the reason)."""

    name: str
    reason: str
    versions: str | None = None
    ecosystem: str | None = None
    org: str = ""


@dataclass(frozen=True, slots=True)
class GitEntry:
    """A git entry: commits that are `ref` or descend from it, unless they are or descend from
    `fixed_by`."""

    ref: str
    reason: str
    fixed_by: str | None = None
    org: str = ""


Entry = PackageEntry | GitEntry


@dataclass(frozen=True, slots=True)
class Ancestry:
    """What the pipeline's repository says of one ref as an entry writes it: whether it names a
    commit there (`known`), and whether the artifact's commit is that commit or descends from it
    (`contains`; False when unknown)."""

    known: bool
    contains: bool = False


def entries_of(blocklist: Mapping[str, Sequence[Mapping[str, Any]]], org: str = "") -> list[Entry]:
    """The entries of one org node's `blocklist:` (org-config.md: `packages` and `git_refs`)."""
    found: list[Entry] = []
    for raw in blocklist.get("packages") or ():
        found.append(PackageEntry(str(raw["name"]), str(raw["reason"]),
                                  None if raw.get("versions") is None else str(raw["versions"]),
                                  None if raw.get("ecosystem") is None else str(raw["ecosystem"]), org))
    for raw in blocklist.get("git_refs") or ():
        found.append(GitEntry(str(raw["ref"]), str(raw["reason"]),
                              None if raw.get("fixed_by") is None else str(raw["fixed_by"]), org))
    return found


def refs_of(entries: Sequence[Entry]) -> list[str]:
    """Every ref the git entries name (`ref` and `fixed_by`), once each, in order: what the
    activity asks the repository about."""
    refs: dict[str, None] = {}
    for entry in entries:
        if isinstance(entry, GitEntry):
            refs[entry.ref] = None
            if entry.fixed_by is not None:
                refs[entry.fixed_by] = None
    return list(refs)


def _version_in(version: str, specifiers: SpecifierSet | None) -> bool:
    if specifiers is None:
        return True
    try:
        parsed = Version(version)
    except InvalidVersion:
        return True  # engine.md: a version that cannot be parsed matches
    return specifiers.contains(parsed, prereleases=True)


def _by(entry: Entry) -> str:
    return f" (listed by {entry.org})" if entry.org else ""


def evaluate(entries: Sequence[Entry], packages: Sequence[Package], git: Mapping[str, Ancestry], *,
             now: datetime, commit: str = "", config_error: str | None = None,
             source_error: str | None = None, no_manifest: str | None = None) -> GateResult:
    """PASS when no entry matches; FAIL `blocked_package` / `blocked_commit` listing every match
    with its reason; WAIT while an observation is missing (see the module docstring).

    `git` maps each ref of `refs_of(entries)` to its `Ancestry`; `commit` is the artifact's
    commit, for the reason."""
    package_entries = [e for e in entries if isinstance(e, PackageEntry)]
    git_entries = [e for e in entries if isinstance(e, GitEntry)]
    inputs: dict[str, Any] = {**clock(now), "entries": {"packages": len(package_entries), "git_refs": len(git_entries)},
                              "packages": len(packages)}
    if commit:
        inputs["commit"] = commit
    if config_error is not None:
        return WAIT("config_error", f"the org config is invalid: {config_error}",
                    inputs={**inputs, "config_error": config_error})
    if no_manifest is not None and package_entries:  # git entries and no entries need no manifest
        return WAIT("no_manifest", no_manifest, inputs={**inputs, "no_manifest": no_manifest})
    specifiers: dict[int, SpecifierSet | None] = {}
    for index, entry in enumerate(package_entries):
        try:
            every = entry.versions is None or entry.versions.strip() == ANY_VERSION
            specifiers[index] = None if every else SpecifierSet(str(entry.versions))
        except InvalidSpecifier:
            error = (f"blocklist entry {entry.name}{_by(entry)}: versions {entry.versions!r} is not a PEP 440 "
                     "specifier set")
            return WAIT("config_error", f"the org config is invalid: {error}", inputs={**inputs, "config_error": error})
    matches: list[dict[str, Any]] = []
    lines: list[str] = []
    for index, entry in enumerate(package_entries):
        for package in packages:
            if entry.ecosystem is not None and entry.ecosystem != package.ecosystem:
                continue
            if normalise_name(entry.name, package.ecosystem) != package.name:
                continue
            if not _version_in(package.version, specifiers[index]):
                continue
            matches.append({"kind": "package", "name": package.name, "version": package.version,
                            "ecosystem": package.ecosystem, "entry": entry.name, "versions": entry.versions,
                            "reason": entry.reason, "org": entry.org})
            within = f" {entry.versions}" if entry.versions is not None else ""
            lines.append(f"package {package.name} {package.version or '(no version)'} ({package.ecosystem}) is in "
                         f"{entry.name}{within}{_by(entry)}: {entry.reason}")
    package_matched = bool(matches)

    missing = [ref for ref in refs_of(git_entries) if ref not in git]
    if source_error is not None or missing:
        error = source_error if source_error is not None else f"no answer for {', '.join(missing)}"
        inputs["source_error"] = error
        if not package_matched:
            return WAIT("source_error", f"cannot tell which blocklisted commits this artifact holds: {error}",
                        inputs=inputs)
        # A package match is certain without the repository: it fails now (git entries unchecked).
        inputs.update({"matches": matches, "unknown_refs": [], "fixed": []})
        return _fail("blocked_package", lines, f" (git entries not checked: {error})", inputs)

    unknown: list[str] = []
    fixed: list[dict[str, str]] = []
    short = commit[:12] if commit else "the artifact's commit"
    for git_entry in git_entries:
        ancestry = git[git_entry.ref]
        if not ancestry.known:
            if git_entry.ref not in unknown:
                unknown.append(git_entry.ref)
            continue
        if not ancestry.contains:
            continue
        if git_entry.fixed_by is not None:
            fix = git[git_entry.fixed_by]
            if not fix.known:
                if git_entry.fixed_by not in unknown:
                    unknown.append(git_entry.fixed_by)
            elif fix.contains:
                fixed.append({"ref": git_entry.ref, "fixed_by": git_entry.fixed_by})
                continue
        matches.append({"kind": "git", "ref": git_entry.ref, "fixed_by": git_entry.fixed_by, "reason": git_entry.reason,
                        "org": git_entry.org})
        fix_note = f" and not from its fix {git_entry.fixed_by}" if git_entry.fixed_by is not None else ""
        lines.append(f"commit {short} is or descends from {git_entry.ref}{fix_note}{_by(git_entry)}: {git_entry.reason}")

    inputs.update({"matches": matches, "unknown_refs": unknown, "fixed": fixed})
    note = f" (unknown to the repository, matching nothing: {', '.join(unknown)})" if unknown else ""
    if not matches:
        checked = len(package_entries) + len(git_entries)
        return PASS(f"no blocklist entry matches ({checked} checked){note}", inputs=inputs)
    return _fail("blocked_package" if package_matched else "blocked_commit", lines, note, inputs)


def _fail(code: str, lines: Sequence[str], note: str, inputs: dict[str, Any]) -> GateResult:
    listed = "; ".join(lines[:_REASON_MATCHES])
    more = f"; and {len(lines) - _REASON_MATCHES} more" if len(lines) > _REASON_MATCHES else ""
    count = f"{len(lines)} blocklist match{'es' if len(lines) != 1 else ''}"
    return FAIL(code, f"{count}: {listed}{more}{note}", inputs=inputs)
