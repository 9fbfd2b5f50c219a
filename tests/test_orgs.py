"""Org-config resolution: every rule of org-config.md on small trees, exact outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.errors import ConfigError
from pipewarden.orgs.resolve import find_exception, resolve_settings
from pipewarden.orgs.tree import OrgTree, load_org_tree
from pipewarden.policy.catalog import load_catalog

TODAY = dt.date(2026, 11, 26)
HEADER = "apiVersion: pipewarden/v1\nkind: OrgConfig\n"


def node(name: str, parent: str | None = None, body: str = "") -> str:
    meta = f"metadata:\n  name: {name}\n" + (f"  parent: {parent}\n" if parent else "")
    return HEADER + meta + body


def tree_of(tmp_path: Path, files: dict[str, str], today: dt.date = TODAY) -> OrgTree:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return load_org_tree(str(tmp_path), load_catalog(()), today)


def test_levels_and_params_merge_along_the_chain(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {
        "root.yaml": node("root", body="rules:\n  deployment-window:\n    level: enforce\n    params: {earliest: '08:00', days: [mon]}\n"),
        "child.yaml": node("child", "root", "teams: [a]\nrules:\n  deployment-window:\n    params: {latest: '18:00'}\n"),
    })
    setting = resolve_settings(tree, "child", load_catalog(()))["deployment-window"]
    assert setting.level == "enforce"
    assert setting.params == {"days": ["mon"], "earliest": "08:00", "latest": "18:00"}
    untouched = resolve_settings(tree, "child", load_catalog(()))["canary-bake-time"]
    assert (untouched.level, untouched.params) == ("warn", {"min_minutes": 60})


def test_list_params_replace_the_inherited_list(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {
        "root.yaml": node("root", body="rules:\n  build-tests: {params: {required_types: [unit, style]}}\n"),
        "child.yaml": node("child", "root", "rules:\n  build-tests: {params: {required_types: [coverage]}}\n"),
    })
    assert resolve_settings(tree, "child", load_catalog(()))["build-tests"].params == {"required_types": ["coverage"]}


def test_schedules(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {
        "root.yaml": node("root", body="rules:\n  alarm-gating: {level: warn, enforce_from: 2027-01-15}\n"
                          "  auto-rollback: {level: off}\n  full-automation: {enforce_from: 2027-01-01}\n"),
        "early.yaml": node("early", "root", "rules:\n  alarm-gating: {level: enforce}\n"),
        "off.yaml": node("off", "root", "rules:\n  alarm-gating: {level: off}\n"),
        "later.yaml": node("later", "root", "rules:\n  auto-rollback: {enforce_from: 2027-02-01}\n"),
    })
    catalog = load_catalog(())
    root = resolve_settings(tree, "root", catalog)
    assert root["alarm-gating"].level_at(TODAY) == ("warn", "2027-01-15")
    assert root["alarm-gating"].level_at(dt.date(2027, 1, 15)) == ("enforce", None)
    assert root["alarm-gating"].level_at(dt.date(2027, 1, 14)) == ("warn", "2027-01-15")
    # full-automation is off by default: enforce_from alone does not turn it on.
    assert root["full-automation"].level_at(dt.date(2027, 6, 1)) == ("off", None)
    assert resolve_settings(tree, "early", catalog)["alarm-gating"].level_at(TODAY) == ("enforce", None)
    assert resolve_settings(tree, "off", catalog)["alarm-gating"].level_at(dt.date(2028, 1, 1)) == ("off", None)
    assert resolve_settings(tree, "later", catalog)["auto-rollback"].level_at(dt.date(2028, 1, 1)) == ("off", None)


def test_scheduled_enforce_level_warns_before_the_date(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {"root.yaml": node("root", body="rules:\n  alarm-gating: {level: enforce, enforce_from: '2027-01-15'}\n")})
    assert resolve_settings(tree, "root", load_catalog(()))["alarm-gating"].level_at(TODAY) == ("warn", "2027-01-15")


@pytest.mark.parametrize(
    ("files", "message", "where"),
    [
        ({"a.yaml": node("a"), "b.yaml": node("b")}, "two roots", "b.yaml"),
        ({"a.yaml": node("a", "b"), "b.yaml": node("b", "a")}, "no root", "a.yaml"),
        ({"r.yaml": node("r"), "a.yaml": node("a", "b"), "b.yaml": node("b", "a")}, "cycle", "a.yaml"),
        ({"r.yaml": node("r", body="teams: [x]\n"), "a.yaml": node("a", "r", "teams: [x]\n")}, "two org nodes", "a.yaml"),
        ({"r.yaml": node("r"), "a.yaml": node("r")}, "already defined", "a.yaml"),
        ({"r.yaml": node("r", body="rules:\n  no-such-rule: {level: warn}\n")}, "unknown rule id", "r.yaml:6"),
        ({"r.yaml": node("r", body="rules:\n  canary-bake-time:\n    params: {min_minutes: '60'}\n")}, "min_minutes", "r.yaml:7"),
        ({"r.yaml": node("r", body="rules:\n  canary-bake-time:\n    params: {min_minute: 60}\n")}, "no parameter 'min_minute'", "r.yaml:7"),
        ({"r.yaml": node("r", body="rules:\n  canary-bake-time: {level: off, enforce_from: 2027-01-01}\n")}, "level off together", "r.yaml"),
        ({"r.yaml": node("r", body="rules:\n  canary-bake-time: {level: maybe}\n")}, "expected one of", "r.yaml:6"),
        ({"r.yaml": node("r", body="unknown: 1\n")}, "unknown key 'unknown'", "r.yaml:5"),
        ({"r.yaml": node("r", body="rules:\n  requires-preprod: {level: enforce, locked: true}\n"),
          "a.yaml": node("a", "r", "rules:\n  requires-preprod: {level: enforce}\n")}, "locked by org 'r'", "a.yaml:7"),
        ({"r.yaml": node("r", body="rules:\n  requires-preprod: {locked: true}\n"),
          "a.yaml": node("a", "r", "exceptions:\n  - {rule: requires-preprod, teams: [x], reason: r, approved_by: me, permanent: true}\n")},
         "only that node may grant", "a.yaml:7"),
        ({"r.yaml": node("r", body="exceptions:\n  - {rule: alarm-gating, teams: [x], reason: r, approved_by: me}\n")}, "exactly one of", "r.yaml:6"),
        ({"r.yaml": node("r", body="exceptions:\n  - {rule: alarm-gating, teams: [x], reason: r, approved_by: me, permanent: true, expires: 2027-01-01}\n")}, "exactly one of", "r.yaml"),
        ({"r.yaml": node("r", body="exceptions:\n  - {rule: valid-definition, teams: [x], reason: r, approved_by: me, permanent: true}\n")}, "cannot be excepted", "r.yaml"),
        ({"r.yaml": node("r", body="exceptions:\n  - {rule: policy-error, teams: [x], reason: r, approved_by: me, permanent: true}\n")}, "policy-error cannot be excepted; fix the rule that fails", "r.yaml:6"),
        ({"r.yaml": node("r", body="rules:\n  policy-error: {level: off}\n")}, "policy-error is always enforce", "r.yaml:6"),
        ({"r.yaml": node("r", body="rules:\n  policy-error: {level: warn}\n")}, "policy-error is always enforce", "r.yaml:6"),
        ({"r.yaml": node("r", body="settings: {max_exception_days: 30}\nexceptions:\n  - {rule: alarm-gating, teams: [x], reason: r, approved_by: me, expires: 2027-01-01}\n")}, "caps exceptions at 30 days", "r.yaml:7"),
        ({"r.yaml": "a: [\n"}, "invalid YAML", "r.yaml:1"),  # noticed at the end: the last line
    ],
)
def test_configuration_errors(tmp_path: Path, files: dict[str, str], message: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        tree_of(tmp_path, files)
    assert message in str(caught.value)
    assert where in str(caught.value)


def test_exceptions_apply_to_the_subtree_by_pipeline_or_team(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {
        "root.yaml": node("root", body="teams: [core]\n"),
        "retail.yaml": node("retail", "root", "teams: [cart]\nexceptions:\n"
                            "  - {rule: alarm-gating, pipelines: [svc], reason: r, approved_by: dana, expires: 2026-12-01}\n"
                            "  - {rule: auto-rollback, teams: [cart], reason: r, approved_by: dana, permanent: true}\n"),
    })
    assert find_exception(tree, "retail", "alarm-gating", "svc", "cart", TODAY) is not None
    assert find_exception(tree, "retail", "alarm-gating", "svc", "cart", dt.date(2026, 12, 1)) is not None
    assert find_exception(tree, "retail", "alarm-gating", "svc", "cart", dt.date(2026, 12, 2)) is None
    assert find_exception(tree, "retail", "alarm-gating", "other", "cart", TODAY) is None
    assert find_exception(tree, "retail", "auto-rollback", "x", "cart", dt.date(2040, 1, 1)) is not None
    # Not in the subtree of the granting node.
    assert find_exception(tree, "root", "alarm-gating", "svc", "core", TODAY) is None


def test_check_with_org_config_end_to_end(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    org = tmp_path / "org"
    org.mkdir()
    (org / "root.yaml").write_text(node("acme", body="rules:\n  auto-rollback: {level: enforce}\n"))
    (org / "retail.yaml").write_text(node(
        "retail", "acme",
        "teams: [checkout]\nrules:\n  canary-bake-time: {level: warn, enforce_from: 2027-01-15}\n"
        "exceptions:\n  - {rule: auto-rollback, pipelines: [checkout-service], reason: tooling, approved_by: dana, expires: 2027-03-01}\n",
    ))
    write("fleet/a/pipeline.yaml", good_pipeline(("duration: 60m", "duration: 30m"), ("rollback: automatic", "rollback: manual")))
    write("fleet/b/pipeline.yaml", good_pipeline(("checkout-service", "stray"), ("team: checkout", "team: nobody"), ("127.0.0.1:", "10.0.0.1:")))
    result = run_cli("check", str(tmp_path / "fleet"), "--org-config", str(org), "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stdout
    findings = result.json()["findings"]
    by_rule = {(Path(f["file"]).parent.name, f["rule"]): f for f in findings}
    bake = by_rule[("a", "canary-bake-time")]
    assert (bake["level"], bake["enforce_from"], bake["org"]) == ("warn", "2027-01-15", "retail")
    rollback = by_rule[("a", "auto-rollback")]
    assert rollback["level"] == "enforce" and rollback["excepted"] is True
    assert rollback["exception"] == {"org": "retail", "reason": "tooling", "approved_by": "dana",
                                     "expires": "2027-03-01", "permanent": False}
    unknown = by_rule[("b", "unknown-team")]
    assert (unknown["level"], unknown["org"], unknown["path"], unknown["line"]) == ("warn", "acme", "metadata.team", 5)
    after = run_cli("check", str(tmp_path / "fleet"), "--org-config", str(org), "--format", "json", "--now", "2027-03-02")
    assert after.exit_code == 1
    levels = {(Path(f["file"]).parent.name, f["rule"]): f["level"] for f in after.json()["findings"]}
    assert levels[("a", "canary-bake-time")] == "enforce"


def test_config_validate_command(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(node("r", body="teams: [a, b]\n"))
    ok = run_cli("config", "validate", str(tmp_path))
    assert ok.exit_code == 0 and "valid org tree" in ok.stdout
    (tmp_path / "s.yaml").write_text(node("s"))
    bad = run_cli("config", "validate", str(tmp_path))
    assert bad.exit_code == 2 and "two roots" in bad.stderr


def test_blocklists_add_up_along_the_chain(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, {
        "root.yaml": node("root", body="blocklist:\n  packages:\n    - {name: libfoo, versions: '<1.4.2', reason: CVE-2026-1234}\n"),
        "retail.yaml": node("retail", "root", "teams: [cart]\nblocklist:\n  git_refs:\n    - {ref: 9f2c1e0, reason: perf regression}\n"
                            "  packages:\n    - {name: libbar, reason: licence}\n"),
        "other.yaml": node("other", "root", "blocklist:\n  git_refs:\n    - {ref: abc1234, reason: other org only}\n"),
    })
    merged = tree.blocklist("retail")
    assert [p["name"] for p in merged["packages"]] == ["libfoo", "libbar"]
    assert [r["ref"] for r in merged["git_refs"]] == ["9f2c1e0"]
    assert tree.blocklist("root") == {"packages": [{"name": "libfoo", "versions": "<1.4.2", "reason": "CVE-2026-1234"}], "git_refs": []}


def test_non_finite_params_and_anchors_in_org_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a finite number"):
        tree_of(tmp_path, {"r.yaml": node("r", body="rules:\n  progressive-rollout: {params: {max_fraction: .nan}}\n")})
    other = tmp_path / "anchors"
    other.mkdir()
    tree = tree_of(other, {"r.yaml": node("r", body=(
        "teams: [t1]\nexceptions:\n"
        "  - {rule: alarm-gating, teams: &ts [t1], reason: r, approved_by: me, permanent: true}\n"
        "  - {rule: auto-rollback, teams: *ts, reason: r, approved_by: me, permanent: true}\n"))})
    assert [e.teams for e in tree.nodes["r"].exceptions] == [("t1",), ("t1",)]
