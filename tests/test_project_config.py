"""The project config: `.pipewarden.yaml` (kind ProjectConfig) in the working directory or the
nearest parent gives the checker's commands their defaults; command-line options win; `check`
names it in its text header and its JSON; errors name the file and the line (exit 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import NOW, good_pipeline, run_cli

HEADER = "apiVersion: pipewarden/v1\nkind: ProjectConfig\n"
ROOT_ORG = "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n"
# A custom rule folder with a rule that fires on every pipeline, and its test.
RULE = """\
# METADATA
# title: Always
# description: Fires on every pipeline.
# custom:
#   id: always
#   level: warn
#   rationale: A test rule.
#   remediation: Nothing to do.
package pipewarden.rules.always

import rego.v1

deny contains {"msg": "always", "path": "metadata.name"} if {
\tinput.pipeline.metadata.name
}
"""
RULE_TEST = """\
package pipewarden.rules.always_test

import rego.v1

import data.pipewarden.rules.always

test_fires if {
\tcount(always.deny) == 1 with input as {"pipeline": {"metadata": {"name": "x"}}}
}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with a project config at its root, an org tree, a rule folder, two services
    and another tool's pipeline; the working directory is the services folder below the root."""
    (tmp_path / "orgs").mkdir()
    (tmp_path / "orgs" / "acme.yaml").write_text(ROOT_ORG)
    (tmp_path / "rules" / "always").mkdir(parents=True)
    (tmp_path / "rules" / "always" / "always.rego").write_text(RULE)
    (tmp_path / "rules" / "always" / "always_test.rego").write_text(RULE_TEST)
    for name in ("svc", "legacy"):
        (tmp_path / "services" / name).mkdir(parents=True)
        (tmp_path / "services" / name / "pipeline.yaml").write_text(
            good_pipeline(("name: checkout-service", f"name: {name}")).replace("127.0.0.", f"10.{len(name)}.0."))
    (tmp_path / ".pipewarden.yaml").write_text(
        HEADER + "org_config: orgs\npolicies: [rules]\nexclude: [services/legacy]\nfail_on: warn\n"
    )
    monkeypatch.chdir(tmp_path / "services")
    return tmp_path


def test_check_takes_its_options_from_the_nearest_parent(project: Path) -> None:
    result = run_cli("check", "--format", "json", "--now", NOW)
    assert result.exit_code == 1, result.stderr  # fail_on: warn, and the custom rule warns
    data = result.json()
    assert data["config"] == os.path.join("..", ".pipewarden.yaml")
    assert list(data)[:3] == ["version", "generated_at", "config"]
    assert [p["file"] for p in data["pipelines"]] == [os.path.join("svc", "pipeline.yaml")]  # legacy excluded
    assert data["pipelines"][0]["org"] == "acme"  # org_config, relative to the file
    assert [f["rule"] for f in data["findings"]] == ["always"]  # policies, relative to the file
    text = run_cli("check", "--now", NOW)
    assert text.stdout.splitlines()[0] == f"config: {os.path.join('..', '.pipewarden.yaml')}"


def test_command_line_options_win(project: Path) -> None:
    other = project / "other-orgs"
    other.mkdir()
    (other / "root.yaml").write_text(ROOT_ORG.replace("acme", "globex"))
    result = run_cli("check", "--format", "json", "--now", NOW, "--org-config", str(other), "--fail-on", "enforce",
                     "--exclude", "nothing", "--policies", str(project / "orgs"))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert {p["org"] for p in data["pipelines"]} == {"globex"}
    assert len(data["pipelines"]) == 2 and data["findings"] == []


def test_no_config_is_null_and_no_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pipeline.yaml").write_text(good_pipeline())
    monkeypatch.chdir(tmp_path)
    assert run_cli("check", "--format", "json", "--now", NOW).json()["config"] is None
    assert run_cli("check", "--now", NOW).stdout.startswith("passed:")


def test_the_other_checker_commands_take_it(project: Path) -> None:
    report = run_cli("report", "..", "--format", "json", "--now", NOW)
    assert report.exit_code == 0, report.stderr
    assert [(t["team"], t["pipelines"]) for t in report.json()["teams"]] == [("checkout", 1)]
    listing = json.loads(run_cli("rules", "list", "--format", "json").stdout)
    assert "always" in {r["id"] for r in listing}
    assert "always" in run_cli("rules", "show", "always").stdout
    validated = run_cli("config", "validate")
    assert validated.exit_code == 0 and validated.stdout.startswith(f"{os.path.join('..', 'orgs')}: valid org tree")
    assert run_cli("exceptions", "list", "--format", "json").exit_code == 0
    tests = run_cli("policy", "test")
    assert tests.exit_code == 0, tests.stdout + tests.stderr
    assert "test_fires" in run_cli("policy", "test", "-v").stdout


def test_config_validate_without_dir_or_project_config_says_what_to_give(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ran = run_cli("config", "validate")
    assert ran.exit_code == 2
    assert "give the org-config folder DIR, or set org_config in .pipewarden.yaml" in ran.stderr
    assert "config validate [OPTIONS] [DIR]" in run_cli("config", "validate", "--help").stdout


def test_fail_on_new_from_the_file_needs_base(project: Path) -> None:
    (project / ".pipewarden.yaml").write_text(HEADER + "fail_on: new\n")
    result = run_cli("check", "--now", NOW)
    assert result.exit_code == 2
    assert f"fail_on in {os.path.join('..', '.pipewarden.yaml')} new needs --base GIT_REF" in result.stderr


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (HEADER + "org_config: orgs\nopa_url: http://opa\n", 4, "unknown key 'opa_url'"),
        (HEADER + "fail_on: sometimes\n", 3, "expected one of: enforce, warn, new"),
        (HEADER + "policies: rules\n", 3, "'policies' must be of type array"),
        ("apiVersion: pipewarden/v1\nkind: Pipeline\n", 2, "'kind' is 'Pipeline'; expected 'ProjectConfig'"),
        (HEADER + "exclude: [a\n", 3, "invalid YAML"),
        (HEADER + "org_config: a\norg_config: b\n", 4, "duplicate key"),
    ],
)
def test_errors_name_the_file_and_line(project: Path, text: str, where: int, message: str) -> None:
    (project / ".pipewarden.yaml").write_text(text)
    result = run_cli("check", "--now", NOW)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"pipewarden: error: {os.path.join('..', '.pipewarden.yaml')}:{where}: "), line
    assert message in line


def test_help_and_the_engine_commands_never_read_it(project: Path) -> None:
    (project / ".pipewarden.yaml").write_text("kind: [broken\n")
    assert run_cli("check", "--help").exit_code == 0
    status = run_cli("status", "--state-dir", str(project / "no-engine"))
    assert ".pipewarden.yaml" not in status.stderr
    assert run_cli("check", "--now", NOW).exit_code == 2
