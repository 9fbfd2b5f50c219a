"""The CI output formats of `pipewarden check`: SARIF, GitHub annotations, JUnit, markdown, GitLab."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import NOW, run_cli
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.check_markdown import MARKER, MAX_CHARS
from pipewarden.lint.formats.escape import github_data as escape_data
from pipewarden.lint.formats.escape import github_property as escape_property
from pipewarden.lint.formats.registry import render_check
from pipewarden.model.finding import ExceptionInfo, Finding, PipelineSummary

DATA = Path(__file__).parent / "data"
CI = DATA / "ci"
ORG = str(CI / "org")
FLEET = str(CI / "fleet")
CHECKOUT = str(CI / "fleet" / "checkout" / "pipeline.yaml")
BILLING = str(CI / "fleet" / "billing" / "pipeline.yaml")
DOCS = "https://github.com/pipewarden/pipewarden/blob/main/docs/rules"


def check(*args: str) -> Any:
    return run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, *args)


# --- SARIF ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_sarif_validates_against_the_oasis_schema(sarif_validator: jsonschema.Draft7Validator) -> None:
    result = check("--format", "sarif")
    assert result.exit_code == 1
    log = result.json()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator.iter_errors(log)]
    assert errors == []
    assert log["version"] == "2.1.0"


def test_sarif_driver_lists_every_rule_with_help_and_docs() -> None:
    log = check("--format", "sarif").json()
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "pipewarden"
    assert driver["version"] and driver["informationUri"].startswith("https://")
    rules = {r["id"]: r for r in driver["rules"]}
    assert {"valid-definition", "auto-rollback", "alarm-gating", "canary-bake-time"} <= set(rules)
    rollback = rules["auto-rollback"]
    assert rollback["shortDescription"]["text"] == "Prod stages roll back automatically"
    assert rollback["fullDescription"]["text"]
    assert "rollback: automatic" in rollback["help"]["text"]
    assert "**How to fix.**" in rollback["help"]["markdown"]
    assert rollback["helpUri"] == f"{DOCS}/auto-rollback.md"


def test_sarif_results_levels_locations_and_suppressions() -> None:
    run = check("--format", "sarif").json()["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    results = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]): r for r in run["results"]
    }
    assert len(results) == 4
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    # Absolute paths (this fleet's) are file: URIs; relative ones stay relative (test_output_safety.py).
    gating = results[("alarm-gating", Path(CHECKOUT).as_uri())]
    assert gating["level"] == "error"
    assert gating["locations"][0]["physicalLocation"]["region"]["startLine"] == 44
    assert "suppressions" not in gating
    bake = results[("canary-bake-time", Path(CHECKOUT).as_uri())]
    assert bake["level"] == "warning"
    assert bake["message"]["text"].endswith("(enforced from 2027-01-15, in 50 days)")
    assert bake["properties"]["enforceFrom"] == "2027-01-15"
    assert bake["properties"]["enforcedInDays"] == 50
    excepted = results[("auto-rollback", Path(BILLING).as_uri())]
    [suppression] = excepted["suppressions"]
    assert suppression["kind"] == "external"
    assert "rollback tooling for the mainframe bridge is being built" in suppression["justification"]


def test_sarif_fingerprints_ignore_lines(tmp_path: Path) -> None:
    """Lines added above a finding must not change its fingerprint (code-scanning alert history)."""
    original = Path(CHECKOUT).read_text()
    moved = original.replace("apiVersion:", "# a comment\n# and another\napiVersion:", 1)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "pipeline.yaml").write_text(original)
    (tmp_path / "b" / "pipeline.yaml").write_text(moved)

    def prints(folder: str) -> dict[str, tuple[int, str]]:
        run = run_cli("check", str(tmp_path / folder), "--org-config", ORG, "--now", NOW, "--format", "sarif").json()
        return {
            r["ruleId"]: (
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
                r["partialFingerprints"]["pipewardenFinding/v1"],
            )
            for r in run["runs"][0]["results"]
        }

    before, after = prints("a"), prints("b")
    assert set(before) == set(after) == {"canary-bake-time", "alarm-gating", "auto-rollback"}
    for rule in before:
        assert after[rule][0] == before[rule][0] + 2
        assert after[rule][1] == before[rule][1]


# --- GitHub workflow commands -------------------------------------------------------------


def test_github_annotation_lines_exactly() -> None:
    result = check("--format", "github")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        (
            f"::notice file={BILLING},line=37,title=auto-rollback::prod stage 'prod' has rollback: manual; "
            "rollback: automatic required (excepted by retail until 2027-03-31, approved by dana: "
            "rollback tooling for the mainframe bridge is being built)"
        ),
        (
            f"::warning file={CHECKOUT},line=33,title=canary-bake-time::canary stage 'prod-canary' bakes 30m; "
            "at least 60m required (enforced from 2027-01-15, in 50 days)"
        ),
        (
            f"::error file={CHECKOUT},line=44,title=alarm-gating::prod stage 'prod-wave-1' is gated by 0 alarm(s); "
            "at least 1 required"
        ),
        (
            f"::warning file={CHECKOUT},line=46,title=auto-rollback::prod stage 'prod-wave-1' has rollback: manual; "
            "rollback: automatic required"
        ),
        (
            "::notice title=canary-bake-time enforced from 2027-01-15::canary-bake-time is enforced from 2027-01-15, "
            "in 50 days: 1 finding here will then fail this check"
        ),
        "pipewarden: 2 pipeline(s) checked, 0 invalid; 1 enforce, 2 warn, 1 excepted",
    ]


def test_github_escaping() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("C:\\a,b\n") == "C%3A\\a%2Cb%0A"


def test_github_fail_on_warn_turns_warnings_into_errors() -> None:
    lines = check("--format", "github", "--fail-on", "warn").stdout.splitlines()
    assert sum(line.startswith("::error ") for line in lines) == 3
    assert not any(line.startswith("::warning ") for line in lines)


# --- JUnit --------------------------------------------------------------------------------


def test_junit_parses_with_one_suite_per_file_and_failures_for_enforce() -> None:
    result = check("--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {BILLING, CHECKOUT}
    checkout = suites[CHECKOUT]
    cases = {c.get("name"): c for c in checkout.findall("testcase")}
    assert checkout.get("tests") == str(len(cases))
    assert {"valid-definition", "alarm-gating", "auto-rollback", "unknown-team"} <= set(cases)
    assert "full-automation" not in cases  # off by default: no testcase
    failures = [name for name, case in cases.items() if case.find("failure") is not None]
    assert failures == ["alarm-gating"]
    assert checkout.get("failures") == "1" and root.get("failures") == "1"
    failure = cases["alarm-gating"].find("failure")
    assert failure is not None and failure.get("type") == "enforce"
    assert "is gated by 0 alarm(s)" in (failure.get("message") or "")
    # Warnings pass, with the finding in system-out; nothing is skipped in a valid file.
    warned = cases["canary-bake-time"]
    assert warned.find("failure") is None and warned.find("skipped") is None
    assert "enforced from 2027-01-15, in 50 days" in (warned.findtext("system-out") or "")
    billing = {c.get("name"): c for c in suites[BILLING].findall("testcase")}
    assert billing["auto-rollback"].find("failure") is None
    assert "excepted" in (billing["auto-rollback"].findtext("system-out") or "")
    props = {p.get("name"): p.get("value") for p in checkout.iter("property")}
    assert props["pipeline"] == "checkout-service" and props["org"] == "retail"


def test_junit_invalid_file_fails_valid_definition_and_skips_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "pipeline.yaml"
    bad.write_text("apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {name: x, team: t}\nstages: oops\n\x07")
    result = run_cli("check", str(bad), "--now", NOW, "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["valid-definition"].find("failure") is not None
    assert all(c.find("skipped") is not None for name, c in cases.items() if name != "valid-definition")
    assert root.get("failures") == "1"


def test_junit_fail_on_warn_fails_the_warned_testcases() -> None:
    root = ET.fromstring(check("--format", "junit", "--fail-on", "warn").stdout)
    assert root.get("failures") == "3"


# --- GitLab Code Quality ------------------------------------------------------------------


def test_gitlab_code_quality() -> None:
    issues = check("--format", "gitlab").json()
    assert [
        (i["check_name"], i["severity"], i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues
    ] == [
        ("auto-rollback", "info", BILLING, 37),
        ("canary-bake-time", "minor", CHECKOUT, 33),
        ("alarm-gating", "major", CHECKOUT, 44),
        ("auto-rollback", "minor", CHECKOUT, 46),
    ]
    assert len({i["fingerprint"] for i in issues}) == 4
    assert all(set(i) == {"description", "check_name", "fingerprint", "severity", "location"} for i in issues)
    assert "enforced from 2027-01-15, in 50 days" in issues[1]["description"]


# --- exit codes ---------------------------------------------------------------------------


def test_fail_on_warn(tmp_path: Path) -> None:
    warn_only = Path(CHECKOUT).read_text().replace("alarms: []", "alarms: [errors]")
    (tmp_path / "pipeline.yaml").write_text(warn_only)
    args = ("check", str(tmp_path), "--org-config", ORG, "--now", NOW, "--format", "json")
    assert run_cli(*args).exit_code == 0
    assert run_cli(*args, "--fail-on", "warn").exit_code == 1
    assert run_cli(*args, "--fail-on", "fatal").exit_code == 2


def test_fail_on_warn_ignores_excepted_findings() -> None:
    assert run_cli("check", BILLING, "--org-config", ORG, "--now", NOW, "--fail-on", "warn").exit_code == 0


# --- markdown PR comment ------------------------------------------------------------------


def test_markdown_without_base() -> None:
    result = check("--format", "markdown")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == MARKER
    assert lines[1] == "### ❌ Blocks merge: 1 finding at enforce"
    assert "#### Findings (3)" in lines
    assert f"[`alarm-gating`]({DOCS}/alarm-gating.md)" in result.stdout
    assert "enforced from 2027-01-15, in 50 days" in result.stdout
    assert "<summary>Excepted findings (1)" in result.stdout
    # blocking findings come first in the table
    rows = [line for line in lines if line.startswith(("| 🔴", "| 🟡"))]
    assert rows[0].startswith("| 🔴 **enforce**")


def test_markdown_passing_verdict(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(Path(CHECKOUT).read_text().replace("alarms: []", "alarms: [errors]"))
    result = run_cli("check", str(tmp_path), "--org-config", ORG, "--now", NOW, "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == "### ✅ Does not block merge: 2 warnings to look at"


def test_markdown_escapes_cells() -> None:
    from pipewarden.lint.formats.check_markdown import cell

    assert cell("a | b <script> `x` *y*\nz") == "a \\| b \\<script\\> \\`x\\` \\*y\\* z"


def _many_findings(count: int, message_size: int) -> Result:
    """A real Result of `count` findings spread over many files, as a large fleet would give."""
    context = build_context(ORG, (), dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC))
    rules = ["alarm-gating", "auto-rollback", "canary-bake-time", "deployment-window"]
    files = [f"repos/service-{i:03d}/{'deeply/nested/' * 5}pipeline.yaml" for i in range(count // 5)]
    findings = []
    for n in range(count):
        rule = rules[n % len(rules)]
        findings.append(
            Finding(
                rule,
                "enforce" if rule == "alarm-gating" else "warn",
                f"service-{n // 5:03d}",
                "checkout",
                "retail",
                files[n // 5],
                10 + n % 5,
                f"stages[{n % 5}].x",
                f"finding {n} " + "| long <text> " * (message_size // 14),
                excepted=n % 7 == 0,
                enforce_from="2027-01-15" if rule == "canary-bake-time" else None,
                exception=ExceptionInfo("retail", "reason " * 40, "dana", "2027-03-31", False) if n % 7 == 0 else None,
                change="new" if n % 3 else "existing",
            )
        )
    pipelines = tuple(
        PipelineSummary(f, f"service-{i:03d}", "checkout", "retail", "full", True) for i, f in enumerate(files)
    )
    return Result(pipelines, tuple(findings), context)


@pytest.mark.parametrize("count,message_size", [(600, 100), (2000, 1000)])
def test_markdown_stays_under_the_comment_limit(count: int, message_size: int) -> None:
    result = _many_findings(count, message_size)
    fixed = result.findings[:300]
    text = render_check("markdown", result, now=dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC), fixed=fixed)
    assert len(text) <= MAX_CHARS
    assert text.startswith(MARKER + "\n### ❌ Blocks merge")
    assert "more_" in text  # "... and N more"
    new = sum(1 for f in result.findings if f.change == "new" and not f.excepted)
    assert f"#### New findings ({new})" in text
    assert text.rstrip().endswith("</sub>")  # cut by rows, not mid-table


def test_markdown_500_real_findings(tmp_path: Path) -> None:
    """A real run with 500+ findings: still one readable comment with counts."""
    stage = '  - name: prod-{i}\n    type: prod\n    targets: [{{name: cell-{f}-{i}, hosts: ["10.{f}.{i}.1:80"]}}]\n'
    for f in range(6):
        stages = "".join(stage.format(i=i, f=f) for i in range(20))
        (tmp_path / f"svc{f}").mkdir()
        (tmp_path / f"svc{f}" / "pipeline.yaml").write_text(
            f"apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {{name: svc-{f}, team: checkout}}\n"
            f"build: {{commands: [make]}}\nstages:\n{stages}"
        )
    data = run_cli("check", str(tmp_path), "--org-config", ORG, "--now", NOW, "--format", "json").json()
    assert len(data["findings"]) >= 500
    result = run_cli("check", str(tmp_path), "--org-config", ORG, "--now", NOW, "--format", "markdown")
    assert result.exit_code == 1
    assert len(result.stdout) <= MAX_CHARS
    assert f"#### Findings ({len(data['findings'])})" in result.stdout
    assert f"_... and {len(data['findings']) - 100} more_" in result.stdout


# --- the ready-made integrations ------------------------------------------------------------

ROOT = Path(__file__).parent.parent


def test_pre_commit_hook_definition() -> None:
    hook, new_only = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "pipewarden" and hook["language"] == "python"
    assert hook["entry"] == "pipewarden check --as-discovered"
    assert new_only["id"] == "pipewarden-new"  # tests/test_fail_on.py runs both
    for definition in (hook, new_only):
        files = re.compile(definition["files"])
        for name in ("pipeline.yaml", "svc/pipeline.yml", ".pipewarden/pipeline.yaml"):
            assert files.search(name), name
        for name in ("my-pipeline.yaml", "pipeline.yaml.bak", "pipelines.yaml"):
            assert not files.search(name), name


def test_github_action_definition() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"paths", "org-config", "policies", "fail-on"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "--base" in scripts and "--format sarif" in scripts and "--format markdown" in scripts
    assert MARKER in scripts  # the comment is found again by the same marker the report writes
    assert any(step.get("uses", "").startswith("github/codeql-action/upload-sarif@") for step in steps)
    # Inputs go through the environment, never straight into a script (script injection).
    assert "${{" not in scripts


def test_gitlab_template_definition() -> None:
    template = yaml.safe_load((ROOT / "ci" / "gitlab-pipewarden.yml").read_text())
    job = template["pipewarden"]
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    script = "\n".join(job["script"])
    assert "--format gitlab --output gl-code-quality-report.json" in script
    assert "--base" in script
