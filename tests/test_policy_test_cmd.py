"""Issue 15 item 7: `policy test DIR` reports counts per folder, fails for a folder with no test,
shows expected and actual for a failing test and the error text for an erroring one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICIES = ROOT / "org-configs" / "example" / "policies"

TESTS = """package acme.checks_test

import rego.v1

_finding(n) := {{"msg": sprintf("stage %d has no window", [n]), "path": sprintf("stages[%d].window", [n])}}

test_passes if {
	count(_finding(1)) == 1
}

test_wrong_finding if {
	found := _finding(2)
	count(found) == 1
	found == {{"msg": "stage 1 has no window", "path": "stages[1].window"}}
}

test_expected_written_first if {
	"a-b" == concat("-", ["a", "c"])
}

test_with_input if {
	count(_names) == 1 with input as {"stages": [{"name": "beta"}, {"name": "prod"}]}
}

_names contains s.name if some s in input.stages

test_not_holding if {
	not _finding(3)
}

test_errors if {
	to_number("09") == 9
}
"""


def _policies(tmp_path: Path) -> Path:
    top = tmp_path / "acme-policies"
    (top / "checks").mkdir(parents=True)
    (top / "checks" / "checks_test.rego").write_text(TESTS)
    untested = top / "untested-rule"
    untested.mkdir()
    (untested / "untested_rule.rego").write_text(
        "# METADATA\n# custom: {id: untested-rule}\npackage pipewarden.rules.untested_rule\n\nimport rego.v1\n\n"
        'deny contains {"msg": "x", "path": ""} if input.pipeline.nothing\n'
    )
    return top


def test_failures_errors_and_untested_folders(tmp_path: Path) -> None:
    top = _policies(tmp_path)
    result = run_cli("policy", "test", str(top))
    assert result.exit_code == 1
    out = result.stdout
    tests = top / "checks" / "checks_test.rego"
    # A failing comparison: the statement, its line, the actual and the expected value.
    assert (
        f"FAIL acme.checks_test.test_wrong_finding ({tests}:11)\n"
        "  is undefined: its body does not hold\n"
        '  line 14: found == {{"msg": "stage 1 has no window", "path": "stages[1].window"}}\n'
        '    actual:   [{"msg": "stage 2 has no window", "path": "stages[2].window"}]\n'
        '    expected: [{"msg": "stage 1 has no window", "path": "stages[1].window"}]\n'
    ) in out
    # The written-out side is the expected one, wherever it stands.
    assert '    expected: "a-b"\n    actual:   "a-c"\n' in out
    # `with` modifiers apply to both sides.
    assert '  line 22: count(_names) == 1 with input as {"stages": [{"name": "beta"}, {"name": "prod"}]}\n' \
           "    actual:   2\n    expected: 1\n" in out
    assert "  line 28: not _finding(3)\n    does not hold (false or undefined)\n" in out
    # An erroring test: the engine's error with its file and line, no backtrace.
    assert f"ERROR acme.checks_test.test_errors ({tests}:31)\n  {tests}:32: could not parse string as number\n" in out
    assert "backtrace" not in out.lower()
    # The folder that holds a rule and no test fails the run.
    assert f"NO TESTS {top / 'untested-rule'}: no test for untested_rule.rego" in out
    lines = out.splitlines()
    assert lines[-1] == f"{int(lines[-1].split()[0])} passed, 5 failed"
    assert lines[-2] == "1 folder without tests"
    counts = {line.rsplit("  ", 1)[0].strip(): line.rsplit("  ", 1)[1].strip() for line in lines if "  " in line
              and not line.startswith(" ")}
    assert counts[str(top / "checks")] == "1 passed, 5 failed (1 with an error)"
    assert counts[str(top / "untested-rule")] == "no tests"
    assert counts["built-in rules"].endswith("passed, 0 failed")


def test_an_untested_folder_alone_fails(tmp_path: Path) -> None:
    top = _policies(tmp_path)
    shutil.rmtree(top / "checks")
    result = run_cli("policy", "test", str(top))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-2:] == ["1 folder without tests", result.stdout.splitlines()[-1]]
    assert result.stdout.splitlines()[-1].endswith(" passed, 0 failed")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("policy", "test", str(empty))
    assert result.exit_code == 1 and f"NO TESTS {empty}: no test for {empty} (no .rego file)" in result.stdout


def test_a_tested_folder_passes_with_its_counts(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(EXAMPLE_POLICIES, folder)
    done = subprocess.run([sys.executable, "-m", "pipewarden", "policy", "test", str(folder)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    [line] = [line for line in lines if line.startswith(str(folder / "no-friday-afternoon"))]
    assert line.split()[-4:] == [line.split()[-4], "passed,", "0", "failed"] and int(line.split()[-4]) >= 4
    assert "FAIL" not in done.stdout and "NO TESTS" not in done.stdout
