"""SARIF for large fleets (GitHub code scanning's limits) and the rule docs links (`--docs-url`,
custom rules' `related_resources`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest

from conftest import NOW, run_cli
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.result import Result
from pipewarden.lint.formats import check_sarif
from pipewarden.lint.formats.registry import render_check
from pipewarden.model.finding import ExceptionInfo, Finding, PipelineSummary
from pipewarden.model.fingerprint import fingerprints

DATA = Path(__file__).parent / "data"
ORG = str(DATA / "ci" / "org")
FLEET = str(DATA / "ci" / "fleet")
EXAMPLE_POLICIES = Path(__file__).parent.parent / "org-configs" / "example" / "policies"
MOMENT = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)
RULES = ["alarm-gating", "auto-rollback", "canary-bake-time", "deployment-window"]


def fleet_result(count: int) -> Result:
    """A Result of `count` findings over count/4 files (four rules each), with every seventh
    finding excepted, as a large fleet's check gives."""
    context = build_context(ORG, (), MOMENT)
    files = [f"repos/service-{i:05d}/pipeline.yaml" for i in range(-(-count // 4))]
    findings = []
    for n in range(count):
        rule = RULES[n % 4]
        excepted = n % 7 == 0
        findings.append(Finding(
            rule, "enforce" if rule == "alarm-gating" else "warn", f"service-{n // 4:05d}", "checkout", "retail",
            files[n // 4], 10 + n % 4, f"stages[{n % 4}].x", f"finding {n}: prod stage 'prod-eu' lacks {rule}",
            excepted=excepted,
            exception=ExceptionInfo("retail", "being fixed", "dana", "2027-03-31", False) if excepted else None,
        ))
    pipelines = tuple(PipelineSummary(f, f"service-{i:05d}", "checkout", "retail", "full", True)
                      for i, f in enumerate(files))
    return Result(pipelines, tuple(findings), context)


def schema() -> dict[str, Any]:
    return json.loads((DATA / "sarif-schema-2.1.0.json").read_text())  # type: ignore[no-any-return]


def reference_errors(log: dict[str, Any], keep: int = 100) -> list[str]:
    """jsonschema (the validator of test_formats_ci.py) over the log with each run's results cut
    to `keep`: every part of the log but the bulk of identical-shaped results."""
    trimmed = {**log, "runs": [{**run, "results": run["results"][:keep]} for run in log["runs"]]}
    validator = jsonschema.Draft7Validator(schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(trimmed)]


def result_ids(runs: Sequence[dict[str, Any]]) -> list[str]:
    return [r["partialFingerprints"][check_sarif.FINGERPRINT_KEY] for run in runs for r in run["results"]]


# --- 60,000 findings -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big() -> tuple[Result, dict[str, Any]]:
    result = fleet_result(60_000)
    return result, json.loads(render_check("sarif", result, now=MOMENT))


def test_60000_findings_validate_against_the_sarif_schema(big: tuple[Result, dict[str, Any]]) -> None:
    _, log = big
    # Every result through the same schema file, compiled (jsonschema takes half a minute for all
    # 60,000); and jsonschema itself over every part of the log, as the other SARIF tests use it.
    fastjsonschema.compile(schema())(log)
    assert reference_errors(log) == []


def test_60000_findings_are_split_into_runs_github_accepts(big: tuple[Result, dict[str, Any]]) -> None:
    result, log = big
    runs = log["runs"]
    assert [len(run["results"]) for run in runs] == [25_000, 25_000, 10_000]
    assert len(runs) <= check_sarif.MAX_RUNS
    # Every finding once, in the check's order (file, line, rule), none left out.
    assert result_ids(runs) == fingerprints(result.findings)
    messages = [r["message"]["text"] for run in runs for r in run["results"]]
    assert messages == [f.message for f in result.findings]
    # Each run is complete: its tool, all rules, its own invocation; ruleIndex points into its rules.
    for run in runs:
        driver = run["tool"]["driver"]
        assert driver["name"] == "pipewarden"
        assert len(driver["rules"]) == len(result.context.catalog.rules)
        ids = [rule["id"] for rule in driver["rules"]]
        assert all(ids[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
        assert run["invocations"][0]["executionSuccessful"] is True
    # GitHub rejects two runs of one tool and category in a file: the first run takes the upload's
    # category (no automationDetails, as an unsplit log), the others have their own.
    assert "automationDetails" not in runs[0]
    assert [run["automationDetails"]["id"] for run in runs[1:]] == ["pipewarden/part-2/", "pipewarden/part-3/"]
    assert [run["properties"]["part"] for run in runs] == [1, 2, 3]
    assert all(run["properties"]["resultsLeftOut"] == 0 for run in runs)
    [note] = runs[1]["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "note"
    assert "60,000 results in 3 runs of at most 25,000" in note["message"]["text"]
    assert "results 25,001 to 50,000" in note["message"]["text"]
    suppressed = sum(1 for run in runs for r in run["results"] if "suppressions" in r)
    assert suppressed == sum(1 for f in result.findings if f.excepted)


def test_a_check_at_the_limit_stays_one_plain_run() -> None:
    log = json.loads(render_check("sarif", fleet_result(check_sarif.MAX_RESULTS_PER_RUN), now=MOMENT))
    [run] = log["runs"]
    assert len(run["results"]) == 25_000
    assert "automationDetails" not in run and "properties" not in run
    assert "toolExecutionNotifications" not in run["invocations"][0]
    assert check_sarif.limit_note(25_000) is None


def test_past_twenty_runs_the_least_severe_results_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap, at a small scale: 3 runs of 10 (GitHub: 20 of 25,000). Excepted findings go
    first, then warnings; what is kept keeps its order; every run says how many are missing."""
    monkeypatch.setattr(check_sarif, "MAX_RESULTS_PER_RUN", 10)
    monkeypatch.setattr(check_sarif, "MAX_RUNS", 3)
    result = fleet_result(60)
    log = json.loads(render_check("sarif", result, now=MOMENT))
    runs = log["runs"]
    assert [len(run["results"]) for run in runs] == [10, 10, 10]
    kept = [r["message"]["text"] for run in runs for r in run["results"]]
    enforce = [f for f in result.findings if f.level == "enforce" and not f.excepted]
    warn = [f for f in result.findings if f.level == "warn" and not f.excepted]
    assert len(enforce) < 30 < len(enforce) + len(warn)
    assert {f.message for f in enforce} <= set(kept)  # every enforce finding kept
    assert not any(r.get("suppressions") for run in runs for r in run["results"])  # excepted ones out first
    assert kept == [f.message for f in result.findings if f.message in set(kept)]  # in file order
    for run in runs:
        assert run["properties"]["resultsLeftOut"] == 30
        warning = run["invocations"][0]["toolExecutionNotifications"][-1]
        assert warning["level"] == "warning"
        assert warning["message"]["text"].startswith("30 of 60 results are left out of this log")
    fastjsonschema.compile(schema())(log)
    note = check_sarif.limit_note(60)
    assert note is not None and "30 results left out" in note


def test_the_cli_says_when_it_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_sarif, "MAX_RESULTS_PER_RUN", 2)
    result = run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif")
    assert result.exit_code == 1
    assert "pipewarden: SARIF: 4 results in 2 runs of at most 2" in result.stderr
    runs = result.json()["runs"]
    assert [len(run["results"]) for run in runs] == [2, 2]
    assert reference_errors(result.json()) == []


# --- docs links ----------------------------------------------------------------------------


def helps(log: dict[str, Any]) -> dict[str, str | None]:
    return {rule["id"]: rule.get("helpUri") for rule in log["runs"][0]["tool"]["driver"]["rules"]}


def test_docs_url_option_moves_every_builtin_rule_link() -> None:
    default = helps(run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif").json())
    assert default["auto-rollback"] == "https://github.com/pipewarden/pipewarden/blob/main/docs/rules/auto-rollback.md"
    moved = helps(run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif",
                          "--docs-url", "https://docs.example.com/pipewarden/rules/").json())
    assert moved["auto-rollback"] == "https://docs.example.com/pipewarden/rules/auto-rollback.md"
    assert all(url and url.startswith("https://docs.example.com/pipewarden/rules/") for url in moved.values())
    templated = helps(run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif",
                              "--docs-url", "https://wiki.example.com/rules/{rule}/").json())
    assert templated["alarm-gating"] == "https://wiki.example.com/rules/alarm-gating/"
    comment = run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "markdown",
                      "--docs-url", "https://docs.example.com/rules").stdout
    assert "[`alarm-gating`](https://docs.example.com/rules/alarm-gating.md)" in comment
    assert "github.com/pipewarden/pipewarden/blob" not in comment


@pytest.mark.parametrize("url", ["docs.example.com/rules", "ftp://example.com/rules", "https://", "https://a b/"])
def test_docs_url_must_be_an_absolute_http_url(url: str) -> None:
    result = run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif", "--docs-url", url)
    assert result.exit_code == 2
    assert "--docs-url" in result.stderr and "absolute http(s) URL" in result.stderr


def custom_policies(tmp_path: Path, metadata_extra: str) -> Path:
    """The example org's own rule (no-friday-afternoon), with lines added to its METADATA."""
    rule = EXAMPLE_POLICIES / "no-friday-afternoon" / "no_friday_afternoon.rego"
    folder = tmp_path / "policies" / "no-friday-afternoon"
    folder.mkdir(parents=True)
    text = rule.read_text().replace("# METADATA\n", "# METADATA\n" + metadata_extra, 1)
    (folder / rule.name).write_text(text)
    return folder.parent


def test_custom_rules_carry_the_docs_link_of_their_metadata(tmp_path: Path) -> None:
    linked = custom_policies(
        tmp_path / "a", "# related_resources:\n# - ref: https://wiki.example.com/règles/no_friday_(afternoon)\n"
        "#   description: the retail org's page\n")
    log = run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif",
                  "--policies", str(linked), "--docs-url", "https://docs.example.com/rules").json()
    urls = helps(log)
    assert urls["no-friday-afternoon"] == "https://wiki.example.com/r%C3%A8gles/no_friday_(afternoon)"
    assert urls["auto-rollback"] == "https://docs.example.com/rules/auto-rollback.md"
    assert reference_errors(log) == []
    # In the PR comment the parentheses cannot end the link early.
    from pipewarden.lint.formats.check_markdown import rule_link

    context = build_context(ORG, (str(linked),), MOMENT)
    assert rule_link("no-friday-afternoon", context.catalog) == (
        "[`no-friday-afternoon`](https://wiki.example.com/r%C3%A8gles/no_friday_%28afternoon%29)")
    # A bare URL is the short form OPA allows; without the annotation there is no link.
    bare = custom_policies(tmp_path / "b", "# related_resources: [\"https://wiki.example.com/nfa\"]\n")
    assert helps(run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif",
                         "--policies", str(bare)).json())["no-friday-afternoon"] == "https://wiki.example.com/nfa"
    plain = custom_policies(tmp_path / "c", "")
    assert helps(run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--format", "sarif",
                         "--policies", str(plain)).json())["no-friday-afternoon"] is None


def test_a_custom_rule_docs_link_that_is_no_url_is_an_error_at_load(tmp_path: Path) -> None:
    policies = custom_policies(tmp_path, "# related_resources:\n# - ref: see the wiki\n")
    result = run_cli("check", FLEET, "--org-config", ORG, "--now", NOW, "--policies", str(policies))
    assert result.exit_code == 2
    assert "no_friday_afternoon.rego:3" in result.stderr
    assert "related_resources[0].ref is 'see the wiki'; write an absolute http(s) URL" in result.stderr
