"""`pipewarden check` end to end: JSON shape, exit codes, invalid files, options."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import NOW, good_pipeline, run_cli

FINDING_KEYS = {
    "rule", "level", "excepted", "pipeline", "team", "org", "file", "line", "path", "message",
    "enforce_from", "exception", "change",
}


def test_clean_pipeline_passes(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("svc/pipeline.yaml", good_pipeline())
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) == {"version", "generated_at", "config", "pipelines", "findings", "summary"}
    assert data["config"] is None  # no .pipewarden.yaml here or above
    assert data["version"] == 1
    assert data["generated_at"] == "2026-11-26T10:00:00Z"
    assert data["findings"] == []
    assert data["pipelines"] == [
        {"name": "checkout-service", "team": "checkout", "org": None,
         "file": str(tmp_path / "svc/pipeline.yaml"), "automation_level": "full"}
    ]
    assert data["summary"] == {"pipelines": 1, "files_invalid": 0, "enforce": 0, "warn": 0, "excepted": 0}


def test_cli_md_example_finding(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("svc/pipeline.yaml", good_pipeline(("duration: 60m", "duration: 30m")))
    data = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW).json()
    [finding] = data["findings"]
    assert set(finding) == FINDING_KEYS
    assert finding["rule"] == "canary-bake-time"
    assert finding["level"] == "warn"
    assert finding["path"] == "stages[2].bake.duration"
    assert finding["line"] == 63
    assert finding["message"] == "canary stage 'prod-canary' bakes 30m; at least 60m required"
    assert finding["pipeline"] == "checkout-service" and finding["team"] == "checkout"
    assert finding["excepted"] is False and finding["exception"] is None and finding["change"] is None
    assert data["summary"]["warn"] == 1


def test_invalid_file_is_reported_and_others_still_checked(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("a/pipeline.yaml", good_pipeline(("duration: 60m", "duration: 30m")))
    write("b/pipeline.yaml", "apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {name: b, team: t}\nbuild: {commands: [x]}\nstages: oops\n")
    write("c/pipeline.yaml", "\x00\x01binary")
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 1
    data = result.json()
    rules = [(Path(f["file"]).parent.name, f["rule"], f["level"]) for f in data["findings"]]
    assert rules == [("a", "canary-bake-time", "warn"), ("b", "valid-definition", "enforce"),
                     ("c", "valid-definition", "enforce")]
    invalid_b = data["findings"][1]
    assert invalid_b["line"] == 5 and invalid_b["path"] == "stages"
    assert invalid_b["pipeline"] == "b" and invalid_b["team"] == "t"
    assert data["findings"][2]["pipeline"] is None and data["findings"][2]["line"] == 1
    assert data["summary"]["files_invalid"] == 2 and data["summary"]["pipelines"] == 3
    assert [p["automation_level"] for p in data["pipelines"]] == ["full", "none", "none"]


def test_unknown_key_reports_its_own_line(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("p/pipeline.yaml", good_pipeline(("rollback: automatic           #", "rolback: automatic           #")))
    [finding] = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    assert finding["rule"] == "valid-definition"
    assert finding["path"] == "stages[2].rolback" and finding["line"] == 69
    assert "unknown key 'rolback'" in finding["message"]


def test_unquoted_yes_for_a_boolean_is_rejected_clearly(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("p/pipeline.yaml", good_pipeline(("canary: true", "canary: yes")))
    [finding] = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    assert finding["rule"] == "valid-definition" and finding["path"] == "stages[2].canary"
    assert "true or false" in finding["message"]


def test_unquoted_times_mean_what_they_say(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("p/pipeline.yaml", good_pipeline(('start: "09:00"', "start: 09:00"), ('end: "17:00"', "end: 17:00")))
    assert run_cli("check", str(tmp_path), "--format", "json").json()["findings"] == []


def test_semantic_errors(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    cases = {
        "window": (("window: business-hours", "window: office-hours"), "stages[2].window"),
        "alarm": (("alarms: [high-error-rate]", "alarms: [nope]"), "stages[2].alarms[0]"),
        "tz": (("America/Los_Angeles", "Mars/Olympus"), 'windows["business-hours"].timezone'),
        "dup": (("name: gamma", "name: beta"), "stages[1].name"),
        "target": (("name: gamma-1", "name: beta-1"), "stages[1].targets[0].name"),
        "duration": (("duration: 60m", "duration: 60 minutes"), "stages[2].bake.duration"),
        "time": (('end: "17:00"', 'end: "24:00"'), 'windows["business-hours"].end'),
    }
    for name, (replacement, path) in cases.items():
        write(f"{name}/pipeline.yaml", good_pipeline(replacement))
    findings = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    got = {Path(f["file"]).parent.name: f["path"] for f in findings}
    assert got == {name: path for name, (_, path) in cases.items()}
    assert all(f["rule"] == "valid-definition" for f in findings)


def test_exit_codes(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    assert run_cli("check", str(tmp_path / "missing")).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("check", str(empty))
    assert result.exit_code == 0 and "no pipeline file" in result.stderr
    assert run_cli("check", str(empty), "--format", "nope").exit_code == 2
    assert run_cli("check", str(empty), "--now", "yesterday").exit_code == 2
    assert run_cli("check", str(empty), "--org-config", str(tmp_path / "nothing")).exit_code == 2


def test_text_output_and_output_file(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("svc/pipeline.yaml", good_pipeline(("duration: 60m", "duration: 30m")))
    out = tmp_path / "report.txt"
    result = run_cli("check", str(tmp_path / "svc"), "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    text = out.read_text()
    assert f"{tmp_path}/svc/pipeline.yaml:63  warn" in text
    assert "canary-bake-time" in text
    assert text.strip().splitlines()[-1].startswith("passed: 1 pipeline(s) checked")


def test_python_dash_m_and_no_traceback(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "pipewarden", "check", str(tmp_path / "missing")], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "does not exist" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_relative_paths_stay_relative(write: Callable[[str, str], Path], tmp_path: Path, monkeypatch: object) -> None:
    write("repo/pipeline.yaml", good_pipeline())
    result = subprocess.run(
        [sys.executable, "-m", "pipewarden", "check", "--format", "json"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert json.loads(result.stdout)["pipelines"][0]["file"] == "repo/pipeline.yaml"


def test_large_runs_give_the_same_json_compactly(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    import datetime as dt

    from pipewarden.evaluation.context import build_context
    from pipewarden.lint.check import check_paths
    from pipewarden.lint.formats import check_json

    for i in range(3):
        write(f"r{i}/pipeline.yaml", good_pipeline(("duration: 60m", "duration: 30m")))
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    result = check_paths([str(tmp_path)], build_context(None, (), now))
    readable = check_json.render(result, now=now)
    limit = check_json.INDENT_LIMIT
    try:
        check_json.INDENT_LIMIT = 0
        compact = check_json.render(result, now=now)
    finally:
        check_json.INDENT_LIMIT = limit
    assert json.loads(compact) == json.loads(readable)
    assert "\n  " in readable and "\n" not in compact.rstrip("\n")


def test_first_error_is_the_lowest_line_across_kinds_of_error(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    # A reference error (timezone, line 17) above a type error (duration, line 77).
    write("p/pipeline.yaml", good_pipeline(("America/Los_Angeles", "Mars/Base"), ("bake: {duration: 30m}", "bake: {duration: 30 mins}")))
    [finding] = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    assert (finding["line"], finding["path"]) == (17, 'windows["business-hours"].timezone')


def test_anchors_reused_across_stages_are_fine(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    text = good_pipeline(
        ("deploy:\n      hooks:", "deploy: &deploy\n      hooks:"),
        ("deploy: {hooks: {start: ./deploy/start.sh, validate: ./deploy/validate.sh}, min_healthy: 50%}",
         "deploy: *deploy"),
    )
    write("p/pipeline.yaml", text.replace("  name: checkout-service", "  name: &app checkout-service"))
    result = run_cli("check", str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["summary"]["files_invalid"] == 0


def test_non_finite_numbers_are_invalid_not_a_crash(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("a/pipeline.yaml", good_pipeline(("threshold: 5", "threshold: .inf")))
    write("b/pipeline.yaml", good_pipeline(("threshold: 5", "threshold: .nan")))
    write("c/pipeline.yaml", good_pipeline(("checkout-service", "fine"), ("127.0.0.1:", "10.1.1.1:")))
    result = run_cli("check", str(tmp_path), "--format", "json")
    assert result.exit_code == 1, result.stderr
    found = {(Path(f["file"]).parent.name, f["rule"], f["path"]) for f in result.json()["findings"]}
    assert ("a", "valid-definition", 'alarms["high-error-rate"].threshold') in found
    assert ("b", "valid-definition", 'alarms["high-error-rate"].threshold') in found
    assert not any(name == "c" for name, _, _ in found)


def test_duplicate_key_finding_names_the_key(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("p/pipeline.yaml", good_pipeline(("    type: prod\n    canary: true", "    type: prod\n    type: preprod\n    canary: true")))
    [finding] = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    assert (finding["rule"], finding["path"], finding["line"]) == ("valid-definition", "stages[2].type", 57)


def test_unparseable_yaml_is_reported_where_the_parser_noticed_it(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("p/pipeline.yaml", "apiVersion: pipewarden/v1\nkind: Pipeline\nstages: [\n  - a\n")
    [finding] = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    assert (finding["rule"], finding["line"], finding["path"]) == ("valid-definition", 4, "")
    assert "invalid YAML" in finding["message"]


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args in (["check", "--bogus"], ["check", "--format"], ["rules", "show"], ["nope"]):
        done = subprocess.run([sys.executable, "-m", "pipewarden", *args], capture_output=True, text=True, check=False)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("pipewarden: error:")


def test_fast_finding_encoding_equals_the_generic_one() -> None:
    import dataclasses
    import datetime as dt

    from pipewarden.evaluation.context import build_context
    from pipewarden.lint.check import check_paths
    from pipewarden.lint.formats.check_json import _finding_json
    from pipewarden.model.finding import Finding

    root = Path(__file__).resolve().parent.parent
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    context = build_context(str(root / "org-configs" / "example"), (), now)
    findings = list(check_paths([str(root / "examples")], context).findings)
    assert any(f.exception for f in findings) and any(f.enforce_from for f in findings)
    odd = Finding("r", "warn", None, None, None, 'dir/"q"\\x.yaml', 3, 'windows["a-b"]', "naïve – ✓ \n\t end")
    findings += [odd, dataclasses.replace(odd, change="new", excepted=True)]
    encode = json.JSONEncoder().encode
    memo: dict[str | None, str] = {}  # shared, as in a real run: repeated strings come from it
    for finding in findings + findings:
        assert _finding_json(finding, encode, memo) == encode(finding.to_json())
