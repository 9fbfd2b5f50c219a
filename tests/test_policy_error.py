"""A rule that fails while it runs (cli.md, "Rules that fail while they run"): that pipeline gets a
`policy-error` finding naming the rule's file and line and the error, at enforce; every other rule
and pipeline is still checked; exit 1. On every evaluation path: the combined query and the
rule-by-rule fallback, fleet rules, the cache, the worker pool, `report`, `rules promote`, `--base`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.lint.report.aggregate import percentage
from pipewarden.policy.regorus import rule_failure
from pipewarden.policy.rule import Rule

RULE_HEAD = """# METADATA
# title: A custom rule
# custom:
#   id: {id}
#   level: {level}
package pipewarden.rules.{package}

import rego.v1

"""

# The issue's example: targets per test of each preprod stage, dividing by the number of tests.
# Line 11 of the file is the division.
TESTS_PER_TARGET = RULE_HEAD.format(id="tests-per-target", level="warn", package="tests_per_target") + """\
deny contains v if {
	some i, stage in input.pipeline.stages
	stage.type == "preprod"
	per_test := count(stage.targets) / count(object.get(stage, "tests", []))
	per_test > 0.5
	v := {
		"msg": sprintf("preprod stage '%s' has %v targets per test; at most 0.5", [stage.name, per_test]),
		"path": sprintf("stages[%d].tests", [i]),
	}
}
"""
DIVISION_LINE = 13

GAMMA_TESTS = (
    "    tests:\n      - {name: load, type: load, command: \"make load\"}\n"
    "      - {name: security, type: security, command: \"make scan\"}\n"
)
NO_TESTS = (GAMMA_TESTS, "")


def policies(root: Path, text: str = TESTS_PER_TARGET, name: str = "tests-per-target") -> Path:
    folder = root / "policies"
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / f"{name.replace('-', '_')}.rego").write_text(text)
    return folder


def pipeline_text(index: int, *replacements: tuple[str, str]) -> str:
    """The clean example under its own name and hosts (so that no two pipelines clash)."""
    return good_pipeline(("name: checkout-service", f"name: svc-{index}"), *replacements).replace(
        "127.0.0.1:", f"10.0.{index}.1:"
    )


def fleet(root: Path, size: int = 3, broken: int = 0) -> Path:
    """`size` pipelines; the one numbered `broken` has a preprod stage (gamma) without tests."""
    folder = root / "fleet"
    for i in range(size):
        (folder / f"svc-{i}").mkdir(parents=True, exist_ok=True)
        text = pipeline_text(i, NO_TESTS) if i == broken else pipeline_text(i)
        (folder / f"svc-{i}" / "pipeline.yaml").write_text(text)
    return folder


def check_json(*args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("check", *args, "--format", "json", "--now", NOW)
    return result.exit_code, json.loads(result.stdout), result.stderr


def by_file(findings: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, str, int]]]:
    out: dict[str, list[tuple[str, str, str, int]]] = {}
    for f in findings:
        out.setdefault(Path(f["file"]).parent.name, []).append((f["rule"], f["level"], f["message"], f["line"]))
    return out


def expected_failure(rule_file: Path, line: int = DIVISION_LINE, error: str = "divide by zero") -> str:
    return f"rule 'tests-per-target' failed while it ran ({rule_file}:{line}): {error}"


def test_the_issue_example_text_and_json(tmp_path: Path) -> None:
    folder = policies(tmp_path)
    rule_file = folder / "tests-per-target" / "tests_per_target.rego"
    assert "/ count(" in rule_file.read_text().splitlines()[DIVISION_LINE - 1]
    root = fleet(tmp_path)
    code, data, stderr = check_json(str(root), "--policies", str(folder), "--no-cache")
    assert code == 1, stderr
    assert stderr == ""
    found = by_file(data["findings"])
    errors = [f for f in data["findings"] if f["rule"] == "policy-error"]
    assert errors == [{
        "rule": "policy-error", "level": "enforce", "excepted": False, "pipeline": "svc-0", "team": "checkout",
        "org": None, "file": str(root / "svc-0" / "pipeline.yaml"), "line": 1, "path": "",
        "message": expected_failure(rule_file), "enforce_from": None, "exception": None, "change": None,
    }]
    # Every other rule still ran on the failing pipeline, and the other pipelines are intact.
    _, plain, _ = check_json(str(root), "--no-cache")
    without = by_file(plain["findings"])
    assert [f for f in found["svc-0"] if f[0] != "policy-error"] == without["svc-0"]
    for name in ("svc-1", "svc-2"):
        custom = [f for f in found[name] if f[0] == "tests-per-target"]
        assert custom == [("tests-per-target", "warn", "preprod stage 'beta' has 1 targets per test; at most 0.5", 44)]
        assert [f for f in found[name] if f[0] != "tests-per-target"] == without.get(name, [])
    assert data["summary"]["enforce"] == 1

    text = run_cli("check", str(root), "--policies", str(folder), "--no-cache", "--now", NOW)
    assert text.exit_code == 1
    line = next(line for line in text.stdout.splitlines() if "policy-error" in line)
    assert line.split()[:3] == [f"{root / 'svc-0' / 'pipeline.yaml'}:1", "enforce", "policy-error"]
    assert line.endswith(expected_failure(rule_file))


def test_the_real_command_line(tmp_path: Path) -> None:
    """The installed entry point, in a process of its own: exit 1, the finding, no engine dump."""
    folder = policies(tmp_path)
    root = fleet(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pipewarden", "check", str(root), "--policies", str(folder), "--no-cache"],
        capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "1", "RUST_LIB_BACKTRACE": "1"},
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Stack backtrace" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert expected_failure(folder / "tests-per-target" / "tests_per_target.rego") in done.stdout
    assert "FAILED: 3 pipeline(s) checked" in done.stdout


def test_worker_processes_give_the_same_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipewarden.evaluation import pool as evaluate

    folder = policies(tmp_path)
    root = fleet(tmp_path, size=6, broken=3)
    code, alone, _ = check_json(str(root), "--policies", str(folder), "--no-cache")
    monkeypatch.setattr(evaluate, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(evaluate, "CHUNK", 1)
    if evaluate._workers() == 1:
        monkeypatch.setattr(evaluate, "_workers", lambda: 2)
    used: list[int] = []
    real = evaluate._evaluate_in_pool

    def pool(*args: Any) -> None:
        used.append(1)
        real(*args)

    monkeypatch.setattr(evaluate, "_evaluate_in_pool", pool)
    pooled_code, pooled, _ = check_json(str(root), "--policies", str(folder), "--no-cache")
    assert used, "the worker pool was not used"
    assert (pooled_code, pooled["findings"]) == (code, alone["findings"]) and code == 1
    assert [f["pipeline"] for f in pooled["findings"] if f["rule"] == "policy-error"] == ["svc-3"]
    # With the cache, written by the workers, then read back.
    for _ in range(2):
        cached_code, cached, _ = check_json(str(root), "--policies", str(folder))
        assert (cached_code, cached["findings"]) == (code, alone["findings"])


def test_a_fleet_big_enough_for_workers_through_the_real_command_line(tmp_path: Path) -> None:
    """No monkeypatching: a fleet at the size where the run uses worker processes, cold then
    with the cache warm."""
    from pipewarden.evaluation import pool as evaluate

    if evaluate._workers() == 1:
        pytest.skip("one CPU: the run never uses worker processes")
    folder = policies(tmp_path)
    root = tmp_path / "fleet"
    for i in range(evaluate.PARALLEL_THRESHOLD):
        (root / f"svc-{i}").mkdir(parents=True)
        text = pipeline_text(i % 250, NO_TESTS if i in (7, 301) else ("x", "x"))
        text = text.replace(f"name: svc-{i % 250}", f"name: svc-{i}").replace("10.0.", f"10.{i // 250}.")
        (root / f"svc-{i}" / "pipeline.yaml").write_text(text)
    command = [sys.executable, "-m", "pipewarden", "check", str(root), "--policies", str(folder), "--format", "json",
               "--cache-dir", str(tmp_path / "cache"), "--now", NOW]
    outputs = []
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 1, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[0]["findings"] == outputs[1]["findings"]
    errors = [f for f in outputs[0]["findings"] if f["rule"] == "policy-error"]
    assert sorted(f["pipeline"] for f in errors) == ["svc-301", "svc-7"]
    assert all(f["message"] == expected_failure(folder / "tests-per-target" / "tests_per_target.rego") for f in errors)
    # A finding of the custom rule on every other pipeline; each failing one lacks load and
    # security tests and has a preprod stage without tests (three built-in findings).
    size = evaluate.PARALLEL_THRESHOLD
    assert outputs[0]["summary"] == {"pipelines": size, "files_invalid": 0, "enforce": 2, "warn": size - 2 + 2 * 3,
                                     "excepted": 0}


def test_a_warm_cache_gives_the_same_finding_and_a_fixed_rule_clears_it(tmp_path: Path) -> None:
    """policy-error results are cached like any other result: they follow from the file, the
    settings and the rules' bytes, which are all in the key; fixing the rule changes the key."""
    from pipewarden.evaluation.cache import cached_evaluate
    from pipewarden.evaluation.context import build_context
    from pipewarden.evaluation.levels import to_findings
    from pipewarden.load.discover import discover

    folder = policies(tmp_path)
    root = fleet(tmp_path)
    cache = tmp_path / "cache"
    now = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)

    def run() -> tuple[list[tuple[str, str, str]], dict[str, int]]:
        context = build_context(None, (str(folder),), now)
        stats: dict[str, int] = {}
        evaluated = cached_evaluate(discover([str(root)]), context, cache, stats=stats)
        result = to_findings(evaluated, context)
        return [(Path(f.file).parent.name, f.rule, f.message) for f in result.findings], stats

    first, stats = run()
    assert stats == {"hits": 0, "evaluated": 3}
    warm, stats = run()
    assert stats == {"hits": 3, "evaluated": 0} and warm == first
    assert ("svc-0", "policy-error", expected_failure(folder / "tests-per-target" / "tests_per_target.rego")) in warm
    # Through the command line too, with the cache warm.
    args = (str(root), "--policies", str(folder), "--cache-dir", str(cache))
    for _ in range(2):
        code, data, _ = check_json(*args)
        assert code == 1 and [f["pipeline"] for f in data["findings"] if f["rule"] == "policy-error"] == ["svc-0"]
    rule_file = folder / "tests-per-target" / "tests_per_target.rego"
    rule_file.write_text(rule_file.read_text().replace(
        '\tstage.type == "preprod"\n', '\tstage.type == "preprod"\n\tcount(object.get(stage, "tests", [])) > 0\n'
    ))
    from pipewarden.policy.catalog import load_catalog

    load_catalog.cache_clear()  # a new process would read the rule again; this one keeps it
    fixed, stats = run()
    assert stats == {"hits": 0, "evaluated": 3}
    assert "policy-error" not in {rule for _, rule, _ in fixed}


# --- every kind of failure -----------------------------------------------------------------------

_LIB = """package acme.lib

import rego.v1

ratio(a, b) := a / b
"""


@pytest.mark.parametrize(
    ("body", "line", "error"),
    [
        ('deny contains {"msg": "m", "path": ""} if 1 / (count(input.pipeline.stages) - count(input.pipeline.stages)) > 0\n', 10,
         "divide by zero"),
        ('deny contains {"msg": "m", "path": ""} if count(input.pipeline.stages) % 0 > 0\n', 10, "modulo by zero"),
        ('deny contains {"msg": "m", "path": ""} if to_number("09") > 0\n', 10, "could not parse string as number"),
        ('deny contains {"msg": "m", "path": ""} if sprintf("%d", input.pipeline.metadata.name)\n', 10,
         "`sprintf` expects array argument"),
        ('deny contains {"msg": "m", "path": ""} if input.pipeline.metadata.name + 1 > 0\n', 10,
         "`add` expects numeric argument"),
        ('deny contains {"msg": "m", "path": ""} if regex.match("(", input.pipeline.metadata.name)\n', 10,
         "invalid regex"),
        # Conflicting values of a complete rule: the deny itself, a helper, a function.
        ('deny := {{"msg": "a", "path": ""}} if true\ndeny := {{"msg": "b", "path": ""}} if true\n', 11,
         "rule conflicts with the following rule"),
        ('limit := 1 if true\nlimit := 2 if true\ndeny contains {"msg": "m", "path": ""} if limit > 5\n', 11,
         "rule conflicts with the following rule"),
        ('f(x) := 1 if true\nf(x) := 2 if true\ndeny contains {"msg": "m", "path": ""} if f(1) > 5\n', 12,
         "functions must not produce multiple outputs for same inputs"),
        # In a library: the rule's deny line, the library's place in the error.
        ('deny contains {"msg": "m", "path": ""} if data.acme.lib.ratio(1, 0) > 0\n', 10, "divide by zero at "),
        # No place in the engine's error at all: the rule's deny line.
        ('deny contains {"msg": "m", "path": ""} if time.parse_rfc3339_ns("soon") > 0\n', 10, "Failed to parse"),
    ],
    ids=["divide", "modulo", "to-number", "sprintf", "add", "regex", "deny-conflict", "helper-conflict",
         "function-conflict", "library", "no-location"],
)
def test_every_kind_of_failure_is_a_finding(tmp_path: Path, body: str, line: int, error: str) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "lib.rego").write_text(_LIB)
    rule_file = folder / "failing.rego"
    rule_file.write_text(RULE_HEAD.format(id="failing", level="warn", package="failing") + body)
    (tmp_path / "pipeline.yaml").write_text(good_pipeline(("canary: true", "canary: false")))
    code, data, stderr = check_json(str(tmp_path / "pipeline.yaml"), "--policies", str(folder), "--no-cache")
    assert code == 1, stderr
    errors = [f for f in data["findings"] if f["rule"] == "policy-error"]
    assert len(errors) == 1
    message = errors[0]["message"]
    assert message.startswith(f"rule 'failing' failed while it ran ({rule_file}:{line}): "), message
    assert error in message and "\n" not in message
    if "at " in error:
        assert message.endswith(f"{folder / 'lib.rego'}:5")
    # The other rules still ran (canary-first fires on this pipeline).
    assert "canary-first" in {f["rule"] for f in data["findings"]}


def test_two_failing_rules_give_two_findings_and_the_working_ones_report(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.rego").write_text(
            RULE_HEAD.format(id=f"fails-{name}", level="warn", package=f"fails_{name}")
            + 'deny contains {"msg": "m", "path": ""} if 1 / (count(input.pipeline.stages) - count(input.pipeline.stages)) > 0\n'
        )
    (folder / "works.rego").write_text(
        RULE_HEAD.format(id="works", level="warn", package="works")
        + 'deny contains {"msg": "works", "path": "metadata.name"} if input.pipeline.metadata.name\n'
    )
    (tmp_path / "pipeline.yaml").write_text(good_pipeline())
    code, data, _ = check_json(str(tmp_path / "pipeline.yaml"), "--policies", str(folder), "--no-cache")
    assert code == 1
    rules = sorted(f["rule"] for f in data["findings"])
    assert rules == ["policy-error", "policy-error", "works"]
    messages = sorted(f["message"] for f in data["findings"] if f["rule"] == "policy-error")
    assert messages[0].startswith("rule 'fails-one'") and messages[1].startswith("rule 'fails-two'")


def test_levels_and_exceptions_of_the_failing_rule_do_not_soften_it(tmp_path: Path) -> None:
    """policy-error is enforce and never excepted, whatever the org says about the rule that
    failed or about policy-error itself; a failing rule that is off does not run at all."""
    folder = policies(tmp_path)
    root = fleet(tmp_path)
    org = tmp_path / "org"
    org.mkdir()
    head = "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n"
    (org / "acme.yaml").write_text(
        head + "rules:\n  tests-per-target: {level: warn}\n"
        "exceptions:\n"
        "  - {rule: tests-per-target, pipelines: [svc-0], reason: r, approved_by: a, permanent: true}\n"
    )
    code, data, _ = check_json(str(root), "--policies", str(folder), "--org-config", str(org), "--no-cache")
    errors = [f for f in data["findings"] if f["rule"] == "policy-error"]
    assert code == 1 and len(errors) == 1
    assert errors[0]["level"] == "enforce" and errors[0]["excepted"] is False and errors[0]["exception"] is None

    # The org tree refuses to soften policy-error itself, as it does for valid-definition.
    for body in ("rules:\n  policy-error: {level: warn}\n",
                 "exceptions:\n  - {rule: policy-error, pipelines: [svc-0], reason: r, approved_by: a, permanent: true}\n"):
        (org / "acme.yaml").write_text(head + body)
        result = run_cli("check", str(root), "--policies", str(folder), "--org-config", str(org), "--now", NOW)
        assert result.exit_code == 2 and "policy-error" in result.stderr and "acme.yaml:6" in result.stderr

    (org / "acme.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n"
        "rules:\n  tests-per-target: {level: 'off'}\n"
    )
    code, data, _ = check_json(str(root), "--policies", str(folder), "--org-config", str(org), "--no-cache")
    assert code == 0 and not [f for f in data["findings"] if f["rule"] in ("policy-error", "tests-per-target")]


def test_the_failure_text_is_read_with_or_without_a_backtrace() -> None:
    rule = Rule("r", "t", "", "", "", "warn", {}, {}, False, "document", "pipewarden.rules.r", "p/r.rego", True,
                deny_line=7)
    text = ("\n--> p/r.rego:12:5\n   |\n12 | x := 1 / 0\n   |     ^\nerror: divide by zero\n\nStack backtrace:\n"
            "   0: anyhow::kind::Adhoc::new\n   1: error: not this one\n")
    failure = rule_failure(rule, text)
    assert (failure.file, failure.line, failure.error) == ("p/r.rego", 12, "divide by zero")
    conflict = ("--> p/r.rego:9:1\n  |\n9 | a := 2\n  | ^\nerror: rule conflicts with the following rule:\n\n"
                "--> p/r.rego:8:1\n  |\n8 | a := 1\n  | ^\n: defined here")
    assert rule_failure(rule, conflict).message() == (
        "rule 'r' failed while it ran (p/r.rego:9): rule conflicts with the following rule (p/r.rego:8)"
    )
    elsewhere = rule_failure(rule, "--> lib/x.rego:3:1\n |\nerror: divide by zero")
    assert (elsewhere.line, elsewhere.error) == (7, "divide by zero at lib/x.rego:3")
    bare = rule_failure(rule, "Failed to parse datetime:\n premature end of input" + "x" * 1000)
    assert bare.line == 7 and bare.error.startswith("Failed to parse datetime: premature") and len(bare.error) == 500


# --- fleet rules ------------------------------------------------------------------------------------

FLEET_HEAD = RULE_HEAD.replace("pipewarden.rules.", "pipewarden.fleet.")


def test_a_fleet_rule_that_fails_on_one_pipeline(tmp_path: Path) -> None:
    """The pipeline at fault is the one on which the rule fails alone; the others still get
    the rule's findings, and every other rule's."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "numbered.rego").write_text(FLEET_HEAD.format(id="numbered", level="warn", package="numbered") + """\
deny contains v if {
	some p in input.pipelines
	to_number(trim_prefix(p.name, "svc-")) > 0
	v := {"file": p.file, "msg": sprintf("%s is numbered", [p.name]), "path": "metadata.name"}
}
""")
    root = fleet(tmp_path, broken=-1)
    (root / "svc-0" / "pipeline.yaml").write_text(pipeline_text(0).replace("name: svc-0", "name: svc-x"))
    code, data, _ = check_json(str(root), "--policies", str(folder), "--no-cache")
    assert code == 1
    found = by_file(data["findings"])
    errors = [f for f in data["findings"] if f["rule"] == "policy-error"]
    assert [e["pipeline"] for e in errors] == ["svc-x"]
    assert errors[0]["message"].startswith(f"rule 'numbered' failed while it ran ({folder / 'numbered.rego'}:12): ")
    assert ("numbered", "warn", "svc-1 is numbered", 4) in found["svc-1"]
    assert ("numbered", "warn", "svc-2 is numbered", 4) in found["svc-2"]
    # A custom fleet rule sees the whole fleet, not only pipelines that clash (none do here).
    _, plain, _ = check_json(str(root), "--no-cache")
    assert [f for f in found["svc-0"] if f[0] != "policy-error"] == by_file(plain["findings"]).get("svc-0", [])


def test_a_fleet_rule_that_fails_only_on_several_pipelines_together(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "by-team.rego").write_text(FLEET_HEAD.format(id="by-team", level="warn", package="by_team") + """\
owner[team] := p.file if {
	some p in input.pipelines
	team := "all"
}

deny contains {"file": f, "msg": "m", "path": ""} if {
	some f in owner
	false
}
""")
    root = fleet(tmp_path, broken=-1)
    code, data, _ = check_json(str(root), "--policies", str(folder), "--no-cache")
    assert code == 1
    errors = [f for f in data["findings"] if f["rule"] == "policy-error"]
    assert sorted(e["pipeline"] for e in errors) == ["svc-0", "svc-1", "svc-2"]
    assert all(e["message"].endswith("): rules must not produce multiple outputs") for e in errors)


def test_a_failing_fleet_rule_in_the_worker_pool_and_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipewarden.evaluation import pool as evaluate

    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "numbered.rego").write_text(FLEET_HEAD.format(id="numbered", level="warn", package="numbered") + """\
deny contains v if {
	some p in input.pipelines
	to_number(trim_prefix(p.name, "svc-")) > 100
	v := {"file": p.file, "msg": "m", "path": "metadata.name"}
}
""")
    root = fleet(tmp_path, size=5, broken=-1)
    (root / "svc-2" / "pipeline.yaml").write_text(pipeline_text(2).replace("name: svc-2", "name: svc-two"))
    code, alone, _ = check_json(str(root), "--policies", str(folder), "--no-cache")
    monkeypatch.setattr(evaluate, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(evaluate, "CHUNK", 1)
    if evaluate._workers() == 1:
        monkeypatch.setattr(evaluate, "_workers", lambda: 2)
    for extra in (("--no-cache",), (), ()):
        again_code, again, _ = check_json(str(root), "--policies", str(folder), *extra)
        assert (again_code, again["findings"]) == (code, alone["findings"])
    assert code == 1 and [f["pipeline"] for f in alone["findings"] if f["rule"] == "policy-error"] == ["svc-two"]


# --- report, promote, --base ---------------------------------------------------------------------


def org_tree(tmp_path: Path, rules: str = "") -> Path:
    org = tmp_path / "org"
    org.mkdir(exist_ok=True)
    (org / "acme.yaml").write_text(
        f"apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {{name: acme}}\nteams: [checkout]\n{rules}"
    )
    return org


def test_report_counts_the_failure_against_the_rule_that_failed(tmp_path: Path) -> None:
    folder = policies(tmp_path)
    root = fleet(tmp_path, size=1)
    org = org_tree(tmp_path)
    args = ("report", "--org-config", str(org), str(root), "--format", "json", "--now", NOW, "--no-cache")
    result = run_cli(*args, "--policies", str(folder))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    team = next(t for t in data["teams"] if t["team"] == "checkout")
    # The pairs: every rule at warn or enforce (full-automation is off, and policy-error is no
    # pair of its own): the 19 other built-in rules and tests-per-target. The pipeline fails the
    # pairs of its other findings' rules, and that of tests-per-target, which failed.
    _, checked, _ = check_json(str(root), "--org-config", str(org), "--no-cache")
    failing = {f["rule"] for f in checked["findings"]}
    assert failing and "policy-error" not in failing
    assert team["compliance"] == percentage(20 - len(failing) - 1, 20)
    plain = next(t for t in run_cli(*args).json()["teams"] if t["team"] == "checkout")
    assert plain["compliance"] == percentage(19 - len(failing), 19)
    assert team["passing"] == 0 and team["enforce"] == plain["enforce"] + 1
    assert {"rule": "policy-error", "pipelines_failing": 1, "enforce": 1, "warn": 0} in data["rules"]
    assert "tests-per-target" not in {r["rule"] for r in data["rules"]}


def test_report_with_the_cache_and_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipewarden.evaluation import pool as evaluate

    folder = policies(tmp_path)
    root = fleet(tmp_path, size=4, broken=1)
    org = org_tree(tmp_path)
    args = ("report", "--org-config", str(org), str(root), "--format", "json", "--now", NOW, "--policies", str(folder))
    first = run_cli(*args, "--no-cache").json()
    monkeypatch.setattr(evaluate, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(evaluate, "CHUNK", 1)
    if evaluate._workers() == 1:
        monkeypatch.setattr(evaluate, "_workers", lambda: 2)
    for _ in range(2):  # cold, then warm
        again = run_cli(*args).json()
        assert again["teams"] == first["teams"] and again["rules"] == first["rules"]


def test_promote_preview_counts_a_rule_that_would_fail(tmp_path: Path) -> None:
    """Promoting a rule that is off: it does not run before, so nothing fails before; after, it
    fails on the pipeline, which is newly blocked (by its policy-error finding)."""
    folder = policies(tmp_path)
    root = fleet(tmp_path, size=1)
    org = org_tree(tmp_path, "rules:\n  tests-per-target: {level: 'off'}\n")
    result = run_cli("rules", "promote", "tests-per-target", "--org", "acme", "--org-config", str(org),
                     "--policies", str(folder), "--dry-run", "--format", "json", str(root))
    assert result.exit_code == 0, result.stderr
    team = result.json()["teams"][0]
    assert team["blocked_before"] is False and team["blocked_after"] is True and team["newly_blocked"] is True


def test_base_marks_a_policy_error_that_was_there_before_as_existing(tmp_path: Path) -> None:
    folder = policies(tmp_path)
    root = fleet(tmp_path)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "empty")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "fleet")
    (root / "svc-1" / "pipeline.yaml").write_text(pipeline_text(1, NO_TESTS))
    code, data, stderr = check_json(str(root), "--policies", str(folder), "--base", "HEAD", "--no-cache")
    assert code == 1, stderr
    changes = {(f["pipeline"], f["change"]) for f in data["findings"] if f["rule"] == "policy-error"}
    assert changes == {("svc-0", "existing"), ("svc-1", "new")}
    # svc-1's own finding of the rule went away with its failure: it shows as fixed.
    assert [f["pipeline"] for f in data["fixed"] if f["rule"] == "tests-per-target"] == ["svc-1"]
    code, data, _ = check_json(str(root), "--policies", str(folder), "--base", "HEAD~1", "--no-cache")
    assert code == 1 and {f["change"] for f in data["findings"]} == {"new"}


# --- the engine on its own ------------------------------------------------------------------------


def test_a_failing_rule_changes_no_other_rules_findings_on_any_example(tmp_path: Path) -> None:
    """Over every example pipeline: with a rule that fails everywhere, the other rules give what
    they give without it, and the failure is one more finding."""
    from pipewarden.evaluation.context import EvalContext
    from pipewarden.evaluation.levels import to_findings
    from pipewarden.evaluation.pool import evaluate_paths
    from pipewarden.load.discover import discover
    from pipewarden.policy.catalog import load_catalog

    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "always.rego").write_text(
        RULE_HEAD.format(id="always-fails", level="warn", package="always_fails")
        + 'deny contains {"msg": "m", "path": ""} if 1 / (count(input.pipeline.stages) - count(input.pipeline.stages)) > 0\n'
    )
    examples = Path(__file__).resolve().parent.parent / "examples"
    files = discover([str(examples)])
    today = dt.date(2026, 11, 26)
    plain_context = EvalContext(load_catalog(()), None, today)
    with_context = EvalContext(load_catalog((str(folder),)), None, today)
    plain = to_findings(evaluate_paths(files, plain_context), plain_context)
    failing = to_findings(evaluate_paths(files, with_context), with_context)
    valid = {p.file for p in plain.pipelines if p.valid}
    assert len(valid) >= 10
    assert [f for f in failing.findings if f.rule != "policy-error"] == list(plain.findings)
    errors = [f for f in failing.findings if f.rule == "policy-error"]
    assert sorted(f.file for f in errors) == sorted(valid)
    assert all(f.failed_rule == "always-fails" and f.level == "enforce" and f.path == "" for f in errors)
