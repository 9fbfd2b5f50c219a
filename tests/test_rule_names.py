"""A rule's folder, id and package agree (issue 12, item 9; writing-rules.md, "Layout"): folder
`no-friday-afternoon`, METADATA custom.id `no-friday-afternoon`, package
`pipewarden.rules.no_friday_afternoon`; otherwise the catalog does not load, and the error names
the file, the line and what to rename."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from pipewarden.errors import ConfigError
from pipewarden.policy.catalog import FLEET_PACKAGE_PREFIX, RULE_PACKAGE_PREFIX, load_catalog

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICIES = ROOT / "org-configs" / "example" / "policies"


def rule_text(rule_id: str, package: str) -> str:
    return f"""# METADATA
# title: A rule
# custom:
#   id: {rule_id}
#   level: warn
package {package}

import rego.v1

deny contains {{"msg": "m", "path": ""}} if false
"""


def write_rule(folder: Path, file: str, rule_id: str, package: str) -> Path:
    path = folder / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rule_text(rule_id, package))
    return path


def load_error(policies: Path) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        load_catalog((str(policies),))
    return error.value


def test_the_built_in_and_example_rules_agree() -> None:
    catalog = load_catalog((str(EXAMPLE_POLICIES),))
    from_files = [rule for rule in catalog.rules.values() if rule.source]
    assert len(from_files) >= 18 and "no-friday-afternoon" in catalog.rules
    for rule in from_files:
        assert rule.source is not None and rule.package is not None
        prefix = FLEET_PACKAGE_PREFIX if rule.kind == "fleet" else RULE_PACKAGE_PREFIX
        assert Path(rule.source).parent.name == rule.id
        assert rule.package == prefix + rule.id.replace("-", "_")


def test_a_package_that_does_not_match_the_id_names_the_package_line(tmp_path: Path) -> None:
    path = write_rule(tmp_path / "policies", "no-friday-afternoon/rule.rego", "no-friday-afternoon",
                      "pipewarden.rules.no_friday")
    error = load_error(tmp_path / "policies")
    assert (error.file, error.line) == (str(path), 6)
    assert error.message == (
        "package pipewarden.rules.no_friday does not match the rule id 'no-friday-afternoon' (METADATA "
        "custom.id, line 4): rename the package to pipewarden.rules.no_friday_afternoon, or the id to 'no-friday'"
    )


def test_a_folder_that_does_not_match_the_id_names_the_id_line(tmp_path: Path) -> None:
    path = write_rule(tmp_path / "policies", "friday/no_friday_afternoon.rego", "no-friday-afternoon",
                      "pipewarden.rules.no_friday_afternoon")
    error = load_error(tmp_path / "policies")
    assert (error.file, error.line) == (str(path), 4)
    assert error.message == (
        "the rule's folder 'friday' does not match its id 'no-friday-afternoon' (METADATA custom.id): "
        "rename the folder to no-friday-afternoon (one folder per rule, named after its id)"
    )


def test_the_command_line_stops_with_exit_2_and_the_message(tmp_path: Path) -> None:
    path = write_rule(tmp_path / "policies", "no-friday-afternoon/rule.rego", "no-friday-afternoon",
                      "pipewarden.rules.friday")
    for command in (("check", str(tmp_path)), ("rules", "list")):
        done = run_cli(*command, "--policies", str(tmp_path / "policies"))
        assert done.exit_code == 2
        assert f"{path}:6: package pipewarden.rules.friday does not match the rule id" in done.stderr


def test_a_fleet_rule_agrees_under_pipewarden_fleet(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    write_rule(policies, "one-owner/one_owner.rego", "one-owner", "pipewarden.fleet.one_owner")
    assert load_catalog((str(policies),)).rules["one-owner"].kind == "fleet"
    path = write_rule(policies, "one-owner/one_owner.rego", "one-owner", "pipewarden.fleet.owner")
    error = load_error(policies)
    assert (error.file, error.line) == (str(path), 6)
    assert "rename the package to pipewarden.fleet.one_owner, or the id to 'owner'" in error.message


def test_a_namespaced_package_carries_its_namespace_in_the_id(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    write_rule(policies, "acme-canary-first/canary_first.rego", "acme-canary-first", "pipewarden.rules.acme.canary_first")
    assert load_catalog((str(policies),)).rules["acme-canary-first"].package == "pipewarden.rules.acme.canary_first"
    write_rule(policies, "acme-canary-first/canary_first.rego", "canary-first-too", "pipewarden.rules.acme.canary_first")
    error = load_error(policies)
    assert "rename the package to pipewarden.rules.canary_first_too, or the id to 'acme-canary-first'" in error.message


def test_a_rule_file_right_in_the_policy_folder_has_no_folder_to_check(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    write_rule(policies, "whatever.rego", "short-name", "pipewarden.rules.short_name")
    assert "short-name" in load_catalog((str(policies),)).rules
    path = write_rule(policies, "whatever.rego", "short-name", "pipewarden.rules.shortname")
    error = load_error(policies)
    assert (error.file, error.line) == (str(path), 6)
    assert "rename the package to pipewarden.rules.short_name, or the id to 'shortname'" in error.message


def test_the_id_line_of_a_flow_style_block(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    path = policies / "other" / "bad.rego"
    path.parent.mkdir(parents=True)
    path.write_text("# METADATA\n# custom: {id: bad}\npackage pipewarden.rules.bad\nimport rego.v1\ndeny contains 1 if false\n")
    error = load_error(policies)
    assert (error.file, error.line) == (str(path), 2)
    assert error.message.startswith("the rule's folder 'other' does not match its id 'bad'")


def test_a_package_id_that_cannot_be_an_id_gets_one_suggestion(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    write_rule(policies, "short-name/rule.rego", "short-name", "pipewarden.rules.ShortName")
    assert load_error(policies).message.endswith("rename the package to pipewarden.rules.short_name")
