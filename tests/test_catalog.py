"""The catalog stays in step: every rule has metadata, tests and an up-to-date docs page."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import run_cli
from pipewarden.policy.catalog import builtin_policies_dir, load_catalog
from pipewarden.policy.docs import expected_pages
from pipewarden.policy.testing import run_policy_tests

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(())
SPEC_RULES = {
    "valid-definition", "unknown-team", "single-release-process", "build-tests", "requires-preprod",
    "preprod-production-config", "preprod-tests", "load-and-security-tests", "deployment-hygiene",
    "min-healthy-hosts", "canary-first", "canary-bake-time", "canary-datapoints", "prod-bake-time",
    "progressive-rollout", "alarm-gating", "auto-rollback", "deployment-window", "synthetic-monitoring",
    "full-automation", "policy-error",
}


def test_catalog_is_exactly_the_spec() -> None:
    assert set(CATALOG.rules) == SPEC_RULES


@pytest.mark.parametrize("rule_id", sorted(SPEC_RULES))
def test_rule_has_complete_metadata(rule_id: str) -> None:
    rule = CATALOG.rules[rule_id]
    assert rule.title and rule.description and rule.rationale and rule.remediation
    # policy-error is fixed in the rule, not in the pipeline: its example is Rego.
    assert ("```rego" if rule_id == "policy-error" else "```yaml") in rule.remediation
    assert rule.level in ("off", "warn", "enforce")
    jsonschema.Draft7Validator.check_schema(rule.params_schema)
    jsonschema.validate(rule.params, rule.params_schema)
    assert rule.params_schema.get("additionalProperties") is False


@pytest.mark.parametrize("rule_id", sorted(SPEC_RULES - {"valid-definition", "unknown-team", "policy-error"}))
def test_rego_rule_has_a_test_file(rule_id: str) -> None:
    folder = builtin_policies_dir() / rule_id
    base = rule_id.replace("-", "_")
    assert (folder / f"{base}.rego").is_file()
    test = folder / f"{base}_test.rego"
    assert test.is_file() and "test_" in test.read_text()


def test_default_levels_follow_the_spec() -> None:
    assert CATALOG.rules["valid-definition"].level == "enforce"
    assert CATALOG.rules["policy-error"].level == "enforce"
    assert CATALOG.rules["full-automation"].level == "off"
    others = SPEC_RULES - {"valid-definition", "policy-error", "full-automation"}
    assert {CATALOG.rules[r].level for r in others} == {"warn"}


def test_docs_pages_are_generated_and_current() -> None:
    docs = ROOT / "docs" / "rules"
    for name, text in expected_pages(CATALOG).items():
        page = docs / name
        assert page.is_file(), f"{page} is missing: run `make docs`"
        assert page.read_text() == text, f"{page} is stale: run `make docs`"


def test_all_rego_tests_pass() -> None:
    results = run_policy_tests([])
    failed = [f"{r.package}.{r.name}: {r.detail}" for r in results if not r.passed]
    assert len(results) > 100
    assert failed == []


def test_policy_test_command_reports_counts(tmp_path: Path) -> None:
    (tmp_path / "x_test.rego").write_text(
        "package pipewarden.rules.x_test\nimport rego.v1\ntest_ok if { 1 == 1 }\ntest_bad if { 1 == 2 }\n"
    )
    result = run_cli("policy", "test", str(tmp_path))
    assert result.exit_code == 1
    last = result.stdout.strip().splitlines()[-1]
    passed = int(last.split()[0])
    assert last == f"{passed} passed, 1 failed"
    assert "FAIL pipewarden.rules.x_test.test_bad" in result.stdout


def test_rules_list_and_show() -> None:
    listed = run_cli("rules", "list")
    assert listed.exit_code == 0
    for rule_id in SPEC_RULES:
        assert rule_id in listed.stdout
    shown = run_cli("rules", "show", "canary-bake-time")
    assert shown.exit_code == 0 and "min_minutes" in shown.stdout and "## Why" in shown.stdout
    assert run_cli("rules", "show", "nope").exit_code == 2


def test_org_rules_folder_adds_a_rule(tmp_path: Path) -> None:
    example = ROOT / "org-configs" / "example" / "policies"
    listed = run_cli("rules", "list", "--policies", str(example))
    assert "no-friday-afternoon" in listed.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.rego").write_text("# METADATA\n# custom: {id: bad}\npackage pipewarden.rules.bad\nimport rego.v1\ndeny contains x if {\n")
    result = run_cli("check", str(tmp_path), "--policies", str(broken))
    assert result.exit_code == 2 and "bad.rego" in result.stderr


_RULE_HEAD = "# METADATA\n# custom: {{id: {id}, level: \"{level}\"}}\npackage pipewarden.rules.{package}\n\nimport rego.v1\n\n"


def test_an_undefined_deny_hides_nothing_and_any_package_name_works(tmp_path: Path) -> None:
    """All enabled rules are asked for in one query. A complete `deny` that is undefined for a
    document must not hide the other rules' findings; a rule in a nested package must not
    displace a built-in rule with the same last name; a package part that is a Rego keyword
    must not break the query."""
    from conftest import GOOD_PIPELINE

    policies = tmp_path / "policies"
    policies.mkdir()
    rules = {
        ("maybe", "maybe"): 'deny := {{"msg": "maybe", "path": ""}} if input.pipeline.metadata.nothing\n',
        ("comprehension", "comprehension"): 'deny := {{v | v := {{"msg": "from a comprehension", "path": ""}}}}\n',
        ("acme-canary-first", "acme.canary_first"): 'deny contains {{"msg": "acme canary", "path": ""}} if true\n',
        ("in", "in"): 'deny contains {{"msg": "keyword package", "path": ""}} if true\n',
    }
    for (rule_id, package), body in rules.items():
        (policies / f"{rule_id}.rego").write_text(
            _RULE_HEAD.format(id=rule_id, level="warn", package=package) + body.format()
        )
    (tmp_path / "pipeline.yaml").write_text(GOOD_PIPELINE.replace("canary: true", "canary: false"))
    result = run_cli("check", str(tmp_path / "pipeline.yaml"), "--policies", str(policies), "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    rules_found = {f["rule"] for f in json.loads(result.stdout)["findings"]}
    assert {"comprehension", "acme-canary-first", "in", "canary-first"} <= rules_found
    assert "maybe" not in rules_found


def test_off_rules_are_not_evaluated_and_nested_packages_work(tmp_path: Path) -> None:
    """The engine asks only for the enabled rules' `deny` sets: a rule at level off costs
    nothing (here, it would abort every evaluation if it ran)."""
    from conftest import GOOD_PIPELINE

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "explodes.rego").write_text(
        _RULE_HEAD.format(id="explodes", level="off", package="explodes")
        + 'deny contains {"msg": "never", "path": ""} if to_number("not a number") > 0\n'
    )
    (policies / "nested.rego").write_text(
        _RULE_HEAD.format(id="acme-nested", level="warn", package="acme.nested")
        + 'deny contains {"msg": "from a nested package", "path": "metadata.name"} if input.pipeline.metadata.name\n'
    )
    (tmp_path / "pipeline.yaml").write_text(GOOD_PIPELINE)
    result = run_cli("check", str(tmp_path / "pipeline.yaml"), "--policies", str(policies), "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert "from a nested package" in result.stdout and "never" not in result.stdout


@pytest.mark.parametrize(
    ("source", "where", "message"),
    [
        ('denny contains {"msg": "x", "path": ""} if true\n', "rule.rego:3", "defines no `deny`"),
        ('denny contains v if {\n\tdeny := {"msg": "x", "path": ""}\n\tv := deny\n}\n', "rule.rego:3", "defines no `deny`"),
        ('deny := {"msg": "an object", "path": ""}\n', "rule.rego:7", "must be a set of objects"),
        ('deny contains "a bare string" if true\n', "rule.rego:7", "must be a set of objects"),
    ],
    ids=["typo", "typo-with-a-local-deny", "object", "strings"],
)
def test_a_rule_that_cannot_report_is_an_error_not_silence(tmp_path: Path, source: str, where: str, message: str) -> None:
    from conftest import GOOD_PIPELINE

    (tmp_path / "rule.rego").write_text(_RULE_HEAD.format(id="custom", level="warn", package="custom") + source)
    (tmp_path / "pipeline.yaml").write_text(GOOD_PIPELINE)
    result = run_cli("check", str(tmp_path / "pipeline.yaml"), "--policies", str(tmp_path), "--no-cache")
    assert result.exit_code == 2
    assert where in result.stderr and message in result.stderr, result.stderr


def test_a_package_name_with_brackets_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rule.rego").write_text(
        _RULE_HEAD.format(id="custom", level="warn", package='custom["bar-baz"]') + "deny contains 1 if false\n"
    )
    result = run_cli("rules", "list", "--policies", str(tmp_path))
    assert result.exit_code == 2 and "rule.rego:3" in result.stderr and "dotted names" in result.stderr


def test_an_undefined_combined_query_is_asked_again_rule_by_rule(tmp_path: Path) -> None:
    """The safety net behind the defaults: should a rule's `deny` be undefined in the combined
    query all the same, the other rules still report."""
    import dataclasses

    import yaml

    from conftest import GOOD_PIPELINE
    from pipewarden.policy.catalog import load_catalog
    from pipewarden.policy.regorus import RegorusEngine as RuleEngine

    (tmp_path / "maybe.rego").write_text(
        _RULE_HEAD.format(id="maybe", level="warn", package="maybe")
        + 'deny := {{"msg": "m", "path": ""}} if input.pipeline.nothing\n'.format()
    )
    catalog = load_catalog((str(tmp_path),))
    maybe = catalog.rules["maybe"]
    assert not maybe.deny_always_defined
    catalog.rules["maybe"] = dataclasses.replace(maybe, deny_always_defined=True)  # as if misjudged
    document = yaml.safe_load(GOOD_PIPELINE.replace("canary: true", "canary: false"))
    params = {r.id: r.params for r in catalog.rules.values()}
    found = RuleEngine(catalog).evaluate(document, params)
    assert "canary-first" in {rule for rule, _, _ in found} and "maybe" not in {rule for rule, _, _ in found}
