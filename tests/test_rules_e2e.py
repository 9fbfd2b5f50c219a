"""The catalog through `check --format json`: which rules fire, how often, with which paths and lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, good_pipeline, run_cli


def findings_of(tmp_path: Path, text: str, *extra: str) -> list[dict[str, Any]]:
    folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(text)
    result = run_cli("check", str(folder), "--format", "json", "--now", NOW, *extra)
    assert result.exit_code in (0, 1), result.stderr
    findings: list[dict[str, Any]] = result.json()["findings"]
    return findings


def rule_paths(findings: list[dict[str, Any]], rule: str | None = None) -> list[str]:
    return [f["path"] for f in findings if rule is None or f["rule"] == rule]


@pytest.mark.parametrize(
    ("duration", "fires"),
    [("60m", False), ("59m", True), ("3600s", False), ("3599s", True), ("1h", False), ("1d", False), ("0m", True)],
)
def test_canary_bake_time_boundaries(tmp_path: Path, duration: str, fires: bool) -> None:
    findings = findings_of(tmp_path, good_pipeline(("duration: 60m", f"duration: {duration}")))
    assert rule_paths(findings, "canary-bake-time") == (["stages[2].bake.duration"] if fires else [])


def test_missing_bake_reports_the_absent_path_at_the_stage_line(tmp_path: Path) -> None:
    text = re.sub(r"      duration: 60m.*\n", "", good_pipeline())
    findings = findings_of(tmp_path, text)
    [bake] = [f for f in findings if f["rule"] == "canary-bake-time"]
    assert bake["path"] == "stages[2].bake.duration"
    assert bake["message"] == "canary stage 'prod-canary' bakes 0m; at least 60m required"
    assert bake["line"] == 62  # the `bake:` line, nearest existing part of the path


def test_prod_bake_time_in_hours_and_seconds(tmp_path: Path) -> None:
    text = good_pipeline(("bake: {duration: 30m}", "bake: {duration: 1799s}"), ("bake: {duration: 30m}", "bake: {duration: 1h}"))
    assert rule_paths(findings_of(tmp_path, text), "prod-bake-time") == ["stages[3].bake.duration"]


def test_no_prod_stage_means_no_prod_rule(tmp_path: Path) -> None:
    text = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: tool, team: infra}
build: {commands: [make], tests: [{name: u, type: unit, command: make test}]}
stages:
  - name: beta
    type: preprod
    targets: [{name: b, hosts: ["10.0.0.1:80"]}]
    deploy: {hooks: {start: s, validate: v}}
"""
    assert findings_of(tmp_path, text) == []


def test_preprod_after_prod(tmp_path: Path) -> None:
    text = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: late, team: infra}
build: {commands: [make], tests: [{name: u, type: unit, command: make test}]}
stages:
  - name: prod
    type: prod
    targets: [{name: p, hosts: ["10.0.0.1:80"]}]
  - name: beta
    type: preprod
    targets: [{name: b, hosts: ["10.0.0.2:80"]}]
    tests: [{name: i, type: integration, command: x}]
"""
    findings = findings_of(tmp_path, text)
    assert rule_paths(findings, "requires-preprod") == ["stages[0]"]
    assert rule_paths(findings, "preprod-tests") == ["stages"]
    assert rule_paths(findings, "preprod-production-config") == ["stages"]
    assert sorted(rule_paths(findings, "load-and-security-tests")) == ["stages", "stages"]
    assert sorted(rule_paths(findings, "deployment-hygiene")) == ["stages[0].deploy.hooks", "stages[1].deploy.hooks"]


@pytest.mark.parametrize(
    ("min_healthy", "fires"),
    [("66%", False), ("65.9%", True), ("2", False), ("1", True), ("100%", False), ("0", True)],
)
def test_min_healthy_count_versus_percent(tmp_path: Path, min_healthy: str, fires: bool) -> None:
    # The canary's largest target has 3 hosts: 2 of 3 is 66.7%, 1 of 3 is 33.3%.
    text = good_pipeline(("min_healthy: 66%", f"min_healthy: {min_healthy}"))
    assert rule_paths(findings_of(tmp_path, text), "min-healthy-hosts") == (
        ["stages[2].deploy.min_healthy"] if fires else []
    )


@pytest.mark.parametrize(
    ("window", "params", "fires"),
    [
        (("09:00", "17:00"), None, False),
        (("08:59", "17:00"), None, True),
        (("09:00", "17:01"), None, True),
        (("23:00", "05:00"), '{days: [mon, tue, wed, thu, fri], earliest: "22:00", latest: "06:00"}', False),
        (("21:00", "05:00"), '{days: [mon, tue, wed, thu, fri], earliest: "22:00", latest: "06:00"}', True),
        (("10:00", "10:00"), None, True),
        (("10:00", "10:00"), '{days: [mon, tue, wed, thu, fri], earliest: "00:00", latest: "00:00"}', False),
    ],
)
def test_deployment_windows(tmp_path: Path, window: tuple[str, str], params: str | None, fires: bool) -> None:
    text = good_pipeline(('start: "09:00"', f'start: "{window[0]}"'), ('end: "17:00"', f'end: "{window[1]}"'))
    extra: list[str] = []
    if params:
        org = tmp_path / "org"
        org.mkdir()
        (org / "root.yaml").write_text(
            "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: root}\nteams: [checkout]\n"
            f"rules:\n  deployment-window: {{params: {params}}}\n"
        )
        extra = ["--org-config", str(org)]
    paths = rule_paths(findings_of(tmp_path, text, *extra), "deployment-window")
    assert paths == (["stages[2].window", "stages[3].window", "stages[4].window"] if fires else [])


def test_weekend_days_are_not_allowed_by_default(tmp_path: Path) -> None:
    text = good_pipeline(("days: [mon, tue, wed, thu, fri]", "days: [mon, sat]"))
    assert len(rule_paths(findings_of(tmp_path, text), "deployment-window")) == 3


def test_one_finding_per_failing_clause(tmp_path: Path) -> None:
    text = good_pipeline(
        ("canary: true", "canary: false"),
        ('targets: [{name: cell-1, hosts: ["127.0.0.1:9301", "127.0.0.1:9302", "127.0.0.1:9306"]}]',
         'targets: [{name: cell-1, hosts: ["127.0.0.1:9301"]}, {name: cell-1b, hosts: ["127.0.0.1:9302"]}]'),
    )
    findings = findings_of(tmp_path, text)
    assert sorted(rule_paths(findings, "canary-first")) == ["stages[2].canary", "stages[2].targets"]
    # Without a canary stage, no canary-bake-time or canary-datapoints finding; prod-bake-time covers stage 2.
    assert rule_paths(findings, "canary-bake-time") == []
    assert rule_paths(findings, "canary-datapoints") == []


def test_canary_datapoints_clauses(tmp_path: Path) -> None:
    text = good_pipeline(("min_positive: 3000", "min_positive: 2999"), ("max_negative: 0", "max_negative: 1"))
    assert sorted(rule_paths(findings_of(tmp_path, text), "canary-datapoints")) == [
        "stages[2].bake.datapoints.max_negative", "stages[2].bake.datapoints.min_positive",
    ]


def test_synthetics(tmp_path: Path) -> None:
    text = good_pipeline(("interval: 1m", "interval: 61s"))
    assert rule_paths(findings_of(tmp_path, text), "synthetic-monitoring") == ["synthetics[0].interval"]
    empty = good_pipeline(("    requests:\n      - {method: GET, path: /health, expect_status: 200}\n", "    requests: []\n"))
    assert rule_paths(findings_of(tmp_path, empty), "synthetic-monitoring") == ["synthetics"]


def test_progressive_rollout_and_alarms(tmp_path: Path) -> None:
    text = good_pipeline(("    alarms: [high-error-rate]\n    bake: {duration: 30m}", "    bake: {duration: 30m}"))
    assert rule_paths(findings_of(tmp_path, text), "alarm-gating") == ["stages[3].alarms"]


def test_full_automation_is_off_by_default_and_counts_transitions(tmp_path: Path) -> None:
    text = re.sub(
        r"    promotion: automatic +# automatic \| manual.*\n",
        "    promotion: manual\n",
        good_pipeline(("canary: true", "approvals: [{name: lead, type: manual}]\n    canary: true")),
    )
    assert rule_paths(findings_of(tmp_path, text), "full-automation") == []
    org = tmp_path / "org"
    org.mkdir()
    (org / "root.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: root}\nteams: [checkout]\n"
        "rules:\n  full-automation: {level: warn}\n"
    )
    findings = findings_of(tmp_path, text, "--org-config", str(org))
    assert rule_paths(findings, "full-automation") == ["stages[0].promotion", "stages[2].approvals"]
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert {p["automation_level"] for p in result.json()["pipelines"]} == {"partial"}


def test_org_params_change_the_rule(tmp_path: Path) -> None:
    org = tmp_path / "org"
    org.mkdir()
    (org / "root.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: root}\nteams: [checkout]\n"
        "rules:\n  canary-bake-time: {level: enforce, params: {min_minutes: 120}}\n"
    )
    findings = findings_of(tmp_path, good_pipeline(), "--org-config", str(org))
    [bake] = [f for f in findings if f["rule"] == "canary-bake-time"]
    assert bake["level"] == "enforce"
    assert bake["message"] == "canary stage 'prod-canary' bakes 60m; at least 120m required"


def test_single_release_process_across_files(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("a/pipeline.yaml", good_pipeline())
    write("b/pipeline.yaml", good_pipeline())
    write("c/pipeline.yaml", good_pipeline(("checkout-service", "other"), ('"127.0.0.1:9101"', '"127.0.0.1:9999"')))
    findings = run_cli("check", str(tmp_path), "--format", "json").json()["findings"]
    got = sorted((Path(f["file"]).parent.name, f["path"]) for f in findings if f["rule"] == "single-release-process")
    assert got == [
        ("a", "metadata.name"), ("a", "stages[1].targets[0].hosts[0]"),
        ("b", "metadata.name"), ("b", "stages[1].targets[0].hosts[0]"),
        ("c", "stages[1].targets[0].hosts[0]"), ("c", "stages[1].targets[0].hosts[0]"),
    ]
