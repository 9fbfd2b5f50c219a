"""The `blocklist` gate, pure (engine.md, "Gates"): package entries against the manifest with PEP
440 specifier sets (pre-releases included, unparseable versions matching), names normalised per
ecosystem, git entries by ancestry with `fixed_by`, unknown refs noted, and the waits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipewarden.engine.domain.gates import BUILT, ENTRY_GATES
from pipewarden.engine.domain.gates import blocklist as gate
from pipewarden.engine.domain.gates.blocklist import Ancestry, GitEntry, PackageEntry, entries_of, evaluate, refs_of
from pipewarden.engine.domain.manifest import Package

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
COMMIT = "9f8e7d6c5b4a" + "0" * 28


def pypi(name: str, version: str) -> Package:
    return Package.of(name, version, "pypi")


def npm(name: str, version: str) -> Package:
    return Package.of(name, version, "npm")


def matches(entry: PackageEntry, package: Package) -> bool:
    return evaluate([entry], [package], {}, now=NOW).failed


def test_the_gate_is_built_second_among_the_entry_gates() -> None:
    assert gate.NAME == "blocklist" and "blocklist" in BUILT
    assert ENTRY_GATES[:3] == ("policy", "blocklist", "approval")


@pytest.mark.parametrize(("versions", "version", "blocked"), [
    ("<1.4.2", "1.4.1", True),
    ("<1.4.2", "1.4.2", False),
    ("<1.4.2", "1.5.0", False),
    ("<1.4.2", "1.4.1rc1", True),        # pre-releases included
    ("<1.4.2", "1.0.0b3", True),
    ("<1.4.2", "1.4.2rc1", False),       # PEP 440: <V excludes V's own pre-releases ...
    ("<=1.4.2,!=1.4.2", "1.4.2rc1", True),  # ... which this set holds
    (">=2.0.0a1,<2.1", "2.0.0a2", True),
    ("==1.2.*", "1.2.0rc1", True),
    ("==1.2.*", "1.3.0", False),
    ("!=1.0", "1.0.0", False),
    (">=1.0,<2", "1.5", True),
    ("<1.4.2", "not-a-version", True),   # a version that cannot be parsed matches
    ("<1.4.2", "", True),
    ("<1.4.2", "1.0.0-beta.1", True),    # npm's semver pre-release, read by PEP 440 as 1.0.0b1
    (None, "99.0", True),                # no versions: every version
    ("*", "99.0", True),
    (" * ", "not-a-version", True),
])
def test_package_versions(versions: str | None, version: str, blocked: bool) -> None:
    assert matches(PackageEntry("libfoo", "CVE-2026-1234", versions), pypi("libfoo", version)) is blocked


def test_names_are_normalised_and_ecosystems_chosen() -> None:
    entry = PackageEntry("Lib_Foo.Bar", "bad", "<2")
    assert matches(entry, pypi("lib-foo-bar", "1.0"))
    assert matches(entry, pypi("LIB.FOO_BAR", "1.0"))
    assert matches(entry, npm("lib_foo.bar", "1.0"))             # npm lowercases only ...
    assert not matches(entry, npm("lib-foo-bar", "1.0"))         # ... so this is another npm name
    any_ecosystem = PackageEntry("@Scope/Left-Pad", "bad")
    assert matches(any_ecosystem, npm("@scope/left-pad", "1.3.0"))
    only_pypi = PackageEntry("left-pad", "bad", ecosystem="pypi")
    assert matches(only_pypi, pypi("Left_Pad", "1.0"))
    assert not matches(only_pypi, npm("left-pad", "1.0"))
    only_npm = PackageEntry("left-pad", "bad", ecosystem="npm")
    assert not matches(only_npm, pypi("left-pad", "1.0")) and matches(only_npm, npm("LEFT-PAD", "1.0"))


def test_every_match_is_listed_with_its_reason() -> None:
    entries = [PackageEntry("libfoo", "CVE-2026-1234", "<1.4.2", org="acme"),
               PackageEntry("left-pad", "unpublished", ecosystem="npm", org="shop"),
               PackageEntry("fine", "never matches", "<1")]
    packages = [pypi("libfoo", "1.4.0"), npm("left-pad", "1.3.0"), pypi("fine", "2.0")]
    result = evaluate(entries, packages, {}, now=NOW)
    assert (result.result, result.code) == ("fail", "blocked_package")
    assert result.reason == (
        "2 blocklist matches: package libfoo 1.4.0 (pypi) is in libfoo <1.4.2 (listed by acme): CVE-2026-1234; "
        "package left-pad 1.3.0 (npm) is in left-pad (listed by shop): unpublished")
    assert result.inputs["matches"] == [
        {"kind": "package", "name": "libfoo", "version": "1.4.0", "ecosystem": "pypi", "entry": "libfoo",
         "versions": "<1.4.2", "reason": "CVE-2026-1234", "org": "acme"},
        {"kind": "package", "name": "left-pad", "version": "1.3.0", "ecosystem": "npm", "entry": "left-pad",
         "versions": None, "reason": "unpublished", "org": "shop"}]
    assert result.inputs["entries"] == {"packages": 3, "git_refs": 0} and result.inputs["packages"] == 3
    assert result.inputs["now"] == "2026-12-01T15:00:00.000Z"


def test_many_matches_are_cut_in_the_reason_but_all_in_the_inputs() -> None:
    packages = [pypi(f"lib{i}", "1.0") for i in range(8)]
    result = evaluate([PackageEntry(f"lib{i}", "bad") for i in range(8)], packages, {}, now=NOW)
    assert result.reason.startswith("8 blocklist matches: ") and result.reason.endswith("; and 3 more")
    assert len(result.inputs["matches"]) == 8


def test_no_match_passes_saying_how_many_entries_were_checked() -> None:
    result = evaluate([PackageEntry("libfoo", "x", "<1")], [pypi("libfoo", "1.0")], {}, now=NOW)
    assert (result.result, result.code, result.reason) == ("pass", "ok", "no blocklist entry matches (1 checked)")
    assert result.inputs["matches"] == [] and result.inputs["unknown_refs"] == []
    empty = evaluate([], [], {}, now=NOW)
    assert empty.passed and empty.reason == "no blocklist entry matches (0 checked)"


def git_result(entry: GitEntry, **refs: Ancestry) -> gate.GateResult:
    return evaluate([entry], [], refs, now=NOW, commit=COMMIT)


def test_git_entries_by_ancestry() -> None:
    entry = GitEntry("bad", "performance regression", org="acme")
    descends = git_result(entry, bad=Ancestry(True, True))
    assert (descends.result, descends.code) == ("fail", "blocked_commit")
    assert descends.reason == ("1 blocklist match: commit 9f8e7d6c5b4a is or descends from bad (listed by acme): "
                               "performance regression")
    assert descends.inputs["matches"] == [{"kind": "git", "ref": "bad", "fixed_by": None,
                                           "reason": "performance regression", "org": "acme"}]
    assert descends.inputs["commit"] == COMMIT
    assert git_result(entry, bad=Ancestry(True, False)).passed       # older, or on another branch


def test_fixed_by_lets_the_fix_and_its_descendants_through() -> None:
    entry = GitEntry("bad", "regression", fixed_by="fix")
    assert git_result(entry, bad=Ancestry(True, True), fix=Ancestry(True, True)).passed
    passed = git_result(entry, bad=Ancestry(True, True), fix=Ancestry(True, True))
    assert passed.inputs["fixed"] == [{"ref": "bad", "fixed_by": "fix"}]
    between = git_result(entry, bad=Ancestry(True, True), fix=Ancestry(True, False))
    assert between.failed and "is or descends from bad and not from its fix fix: regression" in between.reason
    assert git_result(entry, bad=Ancestry(True, False), fix=Ancestry(True, False)).passed


def test_unknown_refs_match_nothing_and_are_noted() -> None:
    unknown = git_result(GitEntry("0badc0de", "typo"), **{"0badc0de": Ancestry(False)})
    assert unknown.passed
    assert unknown.reason == ("no blocklist entry matches (1 checked) (unknown to the repository, matching nothing: "
                              "0badc0de)")
    assert unknown.inputs["unknown_refs"] == ["0badc0de"]
    # An unknown fix fixes nothing: the entry still matches, and the unknown fix is noted.
    entry = GitEntry("bad", "regression", fixed_by="nofix")
    result = git_result(entry, bad=Ancestry(True, True), nofix=Ancestry(False))
    assert result.failed and result.code == "blocked_commit"
    assert result.inputs["unknown_refs"] == ["nofix"] and "matching nothing: nofix" in result.reason


def test_a_package_match_names_the_code_when_both_kinds_match() -> None:
    result = evaluate([GitEntry("bad", "regression"), PackageEntry("libfoo", "cve")], [pypi("libfoo", "1")],
                      {"bad": Ancestry(True, True)}, now=NOW, commit=COMMIT)
    assert result.code == "blocked_package" and result.reason.startswith("2 blocklist matches: package libfoo 1")
    assert [m["kind"] for m in result.inputs["matches"]] == ["package", "git"]


def test_without_observations_the_gate_waits() -> None:
    entries = [GitEntry("bad", "regression", fixed_by="fix")]
    missing = evaluate(entries, [], {"bad": Ancestry(True, True)}, now=NOW)
    assert (missing.result, missing.code) == ("wait", "source_error") and "no answer for fix" in missing.reason
    error = evaluate(entries, [], {}, now=NOW, source_error="git rev-parse: not a git repository")
    assert (error.result, error.code) == ("wait", "source_error")
    assert error.reason == ("cannot tell which blocklisted commits this artifact holds: git rev-parse: not a git "
                            "repository")
    config = evaluate(entries, [], {}, now=NOW, config_error="org/acme.yaml:12: bad")
    assert (config.result, config.code, config.reason) == ("wait", "config_error",
                                                           "the org config is invalid: org/acme.yaml:12: bad")
    assert config.inputs["config_error"] == "org/acme.yaml:12: bad"
    gone = "the record of artifact 9f8e7d6c5b4a is missing"
    no_manifest = evaluate([PackageEntry("libfoo", "x")], [], {}, now=NOW, no_manifest=gone)
    assert (no_manifest.result, no_manifest.code, no_manifest.reason) == ("wait", "no_manifest", gone)
    # Without package entries the manifest is not needed.
    assert evaluate([], [], {}, now=NOW, no_manifest=gone).passed
    assert evaluate(entries, [], {"bad": Ancestry(True, True), "fix": Ancestry(True, False)}, now=NOW,
                    no_manifest=gone).code == "blocked_commit"
    bad_spec = evaluate([PackageEntry("libfoo", "x", "about 1.0", org="acme")], [pypi("libfoo", "1.0")], {}, now=NOW)
    assert (bad_spec.result, bad_spec.code) == ("wait", "config_error")
    assert "libfoo (listed by acme): versions 'about 1.0' is not a PEP 440 specifier set" in bad_spec.reason


def test_entries_come_from_org_config_blocklists() -> None:
    entries = entries_of({
        "packages": [{"name": "libfoo", "versions": "<1.4.2", "reason": "CVE"},
                     {"name": "left-pad", "reason": "gone", "ecosystem": "npm"}],
        "git_refs": [{"ref": "9f2c1e0", "reason": "perf", "fixed_by": "4d5e6f7"}, {"ref": "abc", "reason": "x"}],
    }, org="acme")
    assert entries == [PackageEntry("libfoo", "CVE", "<1.4.2", None, "acme"),
                       PackageEntry("left-pad", "gone", None, "npm", "acme"),
                       GitEntry("9f2c1e0", "perf", "4d5e6f7", "acme"), GitEntry("abc", "x", None, "acme")]
    assert refs_of(entries + [GitEntry("abc", "again", "9f2c1e0")]) == ["9f2c1e0", "4d5e6f7", "abc"]
    assert entries_of({}) == []


def test_a_package_match_fails_even_when_the_repository_cannot_be_asked() -> None:
    entries = [GitEntry("bad", "regression"), PackageEntry("libfoo", "CVE-1", "<2")]
    result = evaluate(entries, [pypi("libfoo", "1.0")], {}, now=NOW, source_error="repository gone")
    assert (result.result, result.code) == ("fail", "blocked_package")
    assert result.reason == ("1 blocklist match: package libfoo 1.0 (pypi) is in libfoo <2: CVE-1 "
                             "(git entries not checked: repository gone)")
    assert result.inputs["source_error"] == "repository gone"
    assert evaluate(entries, [pypi("libfoo", "3.0")], {}, now=NOW, source_error="repository gone").waiting
