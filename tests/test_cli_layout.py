"""The command line's layout: one place registers every group, the format registries resolve,
and the exit codes of cli.md are computed in lint/exit_codes.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipewarden.cli.main import cli
from pipewarden.lint import exit_codes
from pipewarden.lint.formats.registry import check_format, check_formats, report_format, report_formats
from pipewarden.model.finding import Finding
from pipewarden.policy import testing as policy_testing

LINT_COMMANDS = ["check", "config", "exceptions", "policy", "report", "rules"]
ENGINE_CLIENT_COMMANDS = ["approve", "audit", "cancel", "events", "executions", "override", "pause", "promote",
                          "reject", "release", "resume", "retry", "rollback", "status"]
ENGINE_SERVER_COMMANDS = ["server", "worker"]
ALL_COMMANDS = sorted(LINT_COMMANDS + ENGINE_CLIENT_COMMANDS + ENGINE_SERVER_COMMANDS)


def test_main_registers_every_group() -> None:
    assert sorted(cli.commands) == ALL_COMMANDS
    rules = cli.commands["rules"]
    assert hasattr(rules, "commands") and sorted(rules.commands) == ["list", "promote", "show"]
    executions, audit = cli.commands["executions"], cli.commands["audit"]
    assert hasattr(executions, "commands") and sorted(executions.commands) == ["list", "show"]
    assert hasattr(audit, "commands") and sorted(audit.commands) == ["verify"]


def test_importing_main_alone_is_enough() -> None:
    # No command is registered as a side effect of importing another module.
    code = "from pipewarden.cli.main import cli; print(' '.join(sorted(cli.commands)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ALL_COMMANDS


def test_format_registries() -> None:
    assert check_formats() == ["text", "json", "sarif", "github", "junit", "markdown", "gitlab"]
    assert report_formats() == ["table", "json", "csv", "markdown", "html"]
    for name in check_formats():
        assert callable(check_format(name))
    for name in report_formats():
        assert callable(report_format(name))
    with pytest.raises(KeyError):
        check_format("xml")


def _finding(level: str, excepted: bool = False) -> Finding:
    return Finding("some-rule", level, "p", "t", None, "pipeline.yaml", 1, "stages", "m", excepted=excepted)


@pytest.mark.parametrize(
    ("levels", "fail_on", "code"),
    [
        ([], "enforce", 0),
        (["warn"], "enforce", 0),
        (["warn"], "warn", 1),
        (["enforce"], "enforce", 1),
        (["enforce!"], "enforce", 0),  # excepted: never blocks
        (["enforce!", "warn"], "warn", 1),
    ],
)
def test_check_exit_code(levels: list[str], fail_on: str, code: int) -> None:
    findings = [_finding(level.rstrip("!"), excepted=level.endswith("!")) for level in levels]
    assert exit_codes.check_exit_code(findings, fail_on) == code


def test_policy_test_exit_code() -> None:
    passed = policy_testing.TestResult("p", "test_a", "f.rego", True)
    failed = policy_testing.TestResult("p", "test_b", "f.rego", False)
    assert exit_codes.policy_test_exit_code([]) == exit_codes.OK
    assert exit_codes.policy_test_exit_code([passed]) == exit_codes.OK
    assert exit_codes.policy_test_exit_code([passed, failed]) == exit_codes.FAILED
