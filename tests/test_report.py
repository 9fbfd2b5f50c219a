"""`pipewarden report`: team and org numbers exactly as cli.md defines them, on small fleets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipewarden.lint.report.aggregate import ORG_KEYS, TEAM_KEYS, percentage
from test_report_support import (
    pipeline,
    report,
    standard_fleet,
    write_tree,
)

TEAMS = {
    "cart": {"team": "cart", "org": "retail", "repos": 1, "pipelines": 1, "automation_level": "full", "passing": 0,
             "enforce": 1, "warn": 0, "excepted": 1, "compliance": 80.0},
    "checkout": {"team": "checkout", "org": "retail", "repos": 2, "pipelines": 2, "automation_level": "partial",
                 "passing": 2, "enforce": 0, "warn": 1, "excepted": 0, "compliance": 90.0},
    "ghost": {"team": "ghost", "org": "acme", "repos": 1, "pipelines": 1, "automation_level": "full", "passing": 1,
              "enforce": 0, "warn": 1, "excepted": 0, "compliance": 80.0},
    "identity": {"team": "identity", "org": "platform", "repos": 0, "pipelines": 0, "automation_level": "none",
                 "passing": 0, "enforce": 0, "warn": 0, "excepted": 0, "compliance": None},
    "search": {"team": "search", "org": "platform", "repos": 1, "pipelines": 1, "automation_level": "none",
               "passing": 0, "enforce": 1, "warn": 0, "excepted": 0, "compliance": 0.0},
}

ORGS = [
    {"org": "acme", "parent": None, "teams": 5, "repos": 5, "pipelines": 5, "passing": 3, "enforce": 2, "warn": 2,
     "excepted": 1, "compliance": 68.0},
    {"org": "platform", "parent": "acme", "teams": 2, "repos": 1, "pipelines": 1, "passing": 0, "enforce": 1,
     "warn": 0, "excepted": 0, "compliance": 0.0},
    {"org": "retail", "parent": "acme", "teams": 2, "repos": 3, "pipelines": 3, "passing": 2, "enforce": 1, "warn": 1,
     "excepted": 1, "compliance": 86.7},
]


def json_report(*args: str) -> dict[str, Any]:
    result = report("--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = result.json()
    return data


def test_team_rows_are_exactly_as_cli_md_defines_them(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    data = json_report("--org-config", str(org), str(fleet))
    assert list(data) == ["version", "generated_at", "teams", "orgs", "rules", "automation", "exceptions"]
    assert data["version"] == 1
    assert data["generated_at"] == "2026-11-27T10:00:00Z"
    assert data["teams"] == [TEAMS[t] for t in ("cart", "checkout", "ghost", "identity", "search")]
    for row in data["teams"]:
        assert tuple(row) == TEAM_KEYS


def test_org_rows_total_their_subtrees(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    data = json_report("--org-config", str(org), str(fleet), "--by", "org")
    assert data["orgs"] == ORGS
    for row in data["orgs"]:
        assert tuple(row) == ORG_KEYS


def test_rules_automation_and_exceptions(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    data = json_report("--org-config", str(org), str(fleet))
    assert data["rules"] == [
        {"rule": "requires-preprod", "pipelines_failing": 1, "enforce": 1, "warn": 0},
        {"rule": "valid-definition", "pipelines_failing": 1, "enforce": 1, "warn": 0},
        {"rule": "build-tests", "pipelines_failing": 1, "enforce": 0, "warn": 1},
        {"rule": "unknown-team", "pipelines_failing": 1, "enforce": 0, "warn": 1},
    ]
    assert data["automation"] == {
        "none": {"teams": 2, "pipelines": 1},
        "manual": {"teams": 0, "pipelines": 0},
        "partial": {"teams": 1, "pipelines": 1},
        "full": {"teams": 2, "pipelines": 3},
    }
    exceptions = data["exceptions"]
    assert list(exceptions) == ["active", "expiring", "expired"]
    # `active` is every exception in force today, the expiring one included.
    assert [(e["org"], e["rule"]) for e in exceptions["active"]] == [("retail", "build-tests"), ("retail", "alarm-gating"),
                                                                     ("platform", "build-tests")]
    assert exceptions["active"][1] == {
        "org": "retail", "rule": "alarm-gating", "pipelines": ["cart-a"], "teams": [], "reason": "alarms <being> wired",
        "approved_by": "dana", "expires": "2027-03-31", "permanent": False,
    }
    assert exceptions["active"][2]["permanent"] is True and exceptions["active"][2]["expires"] is None
    assert [(e["org"], e["rule"], e["expires"]) for e in exceptions["expiring"]] == [
        ("retail", "build-tests", "2026-12-10")]
    assert [(e["org"], e["rule"], e["expires"]) for e in exceptions["expired"]] == [
        ("retail", "requires-preprod", "2026-11-01")]


def test_org_filter_keeps_one_subtree(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    data = json_report("--org-config", str(org), str(fleet), "--org", "retail")
    assert data["teams"] == [TEAMS["cart"], TEAMS["checkout"]]
    assert data["orgs"] == [ORGS[2]]
    assert [r["rule"] for r in data["rules"]] == ["requires-preprod", "build-tests"]
    assert data["automation"]["partial"] == {"teams": 1, "pipelines": 1}
    assert data["automation"]["none"] == {"teams": 0, "pipelines": 0}
    # retail's own exceptions; platform's exception is outside the subtree
    assert [e["org"] for s in ("active", "expiring", "expired") for e in data["exceptions"][s]] == ["retail"] * 4

    platform = json_report("--org-config", str(org), str(fleet), "--org", "platform")
    assert [t["team"] for t in platform["teams"]] == ["identity", "search"]
    # retail's exception names identity but retail is no ancestor of platform: it never applies there
    assert [(e["org"], e["rule"]) for e in platform["exceptions"]["active"]] == [("platform", "build-tests")]
    assert platform["exceptions"]["expiring"] == []


def test_ancestor_exceptions_covering_the_subtree_are_listed(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    (org / "acme.yaml").write_text((org / "acme.yaml").read_text() + (
        "exceptions:\n"
        "  - {rule: build-tests, pipelines: [checkout-b], reason: r, approved_by: cto, expires: 2027-01-31}\n"
        "  - {rule: build-tests, teams: [search], reason: r, approved_by: cto, expires: 2027-01-31}\n"
    ))
    data = json_report("--org-config", str(org), str(fleet), "--org", "retail")
    active = [(e["org"], e["rule"], tuple(e["pipelines"])) for e in data["exceptions"]["active"]]
    assert active == [("retail", "build-tests", ()), ("acme", "build-tests", ("checkout-b",)),
                      ("retail", "alarm-gating", ("cart-a",))]
    checkout = next(t for t in data["teams"] if t["team"] == "checkout")
    assert (checkout["warn"], checkout["excepted"], checkout["compliance"]) == (0, 1, 100.0)


def test_inventory_counts_repositories_without_pipelines(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    for extra in ("cart-ui", "id-admin", "orphan", "teamless"):
        (fleet / extra).mkdir()
    inventory = fleet / "inventory.yaml"
    inventory.write_text(
        "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n"
        "  - {name: checkout-a, path: checkout-a, team: checkout}\n"
        "  - {name: checkout-b, path: checkout-b}\n"
        "  - {name: cart-a, path: cart-a, team: cart}\n"
        "  - {name: cart-ui, path: cart-ui, team: cart}\n"
        "  - {name: search-a, path: search-a, team: search}\n"
        "  - {name: id-admin, path: id-admin, team: identity}\n"
        "  - {name: ghost-a, path: ghost-a}\n"
        "  - {name: orphan, path: orphan, team: nobody}\n"
        "  - {name: teamless, path: teamless}\n"
    )
    result = report("--format", "json", "--org-config", str(org), "--inventory", str(inventory))
    assert result.exit_code == 0, result.stderr
    teams = {t["team"]: t for t in result.json()["teams"]}
    assert set(teams) == {"cart", "checkout", "ghost", "identity", "search"}  # no row for 'nobody'
    assert teams["cart"] == {**TEAMS["cart"], "repos": 2}
    assert teams["identity"] == {**TEAMS["identity"], "repos": 1}
    assert teams["checkout"] == TEAMS["checkout"]
    assert teams["search"] == TEAMS["search"]
    assert result.json()["orgs"][0]["repos"] == 7
    assert "'orphan' has no pipeline and names the team 'nobody', which is in no org node" in result.stderr
    assert "'teamless' has no pipeline and names no team" in result.stderr
    assert f"{inventory}:11: repository 'orphan'" in result.stderr  # notes point at the entry


def test_invalid_file_counts_for_the_inventory_team(tmp_path: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    fleet = write_tree(tmp_path / "f", {
        "broken/pipeline.yaml": "metadata: [not, a, mapping\n",  # unreadable: no team in the file
        "inventory.yaml": "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n"
                          "  - {name: broken, path: broken, team: checkout}\n",
    })
    data = json_report("--org-config", str(org), "--inventory", str(fleet / "inventory.yaml"))
    checkout = next(t for t in data["teams"] if t["team"] == "checkout")
    assert checkout == {"team": "checkout", "org": "retail", "repos": 1, "pipelines": 1, "automation_level": "none",
                        "passing": 0, "enforce": 1, "warn": 0, "excepted": 0, "compliance": 0.0}


def test_unreadable_team_without_inventory_gets_a_null_team_row(tmp_path: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    fleet = write_tree(tmp_path / "f", {"x/pipeline.yaml": "{{{\n"})
    data = json_report("--org-config", str(org), str(fleet))
    row = next(t for t in data["teams"] if t["team"] is None)
    assert row == {"team": None, "org": "acme", "repos": 1, "pipelines": 1, "automation_level": "none",
                   "passing": 0, "enforce": 1, "warn": 0, "excepted": 0, "compliance": 0.0}
    assert data["teams"][-1] is not None and data["teams"][-1]["team"] is None  # listed last


def test_compliance_counts_rules_at_warn_or_enforce_for_the_pipelines_org(tmp_path: Path) -> None:
    # retail turns build-tests off and schedules unknown-team; platform keeps the root's four.
    org, _ = standard_fleet(tmp_path)
    (org / "retail.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: retail, parent: acme}\nteams: [checkout]\n"
        "rules:\n  build-tests: {level: off}\n  unknown-team: {level: warn, enforce_from: 2027-01-01}\n"
    )
    fleet = write_tree(tmp_path / "f", {
        "a/pipeline.yaml": pipeline("a", "checkout", 1, unit_tests=False),  # build-tests is off: no pair
        "b/pipeline.yaml": pipeline("b", "search", 2, unit_tests=False, alarms=False),
    })
    teams = {t["team"]: t for t in json_report("--org-config", str(org), str(fleet))["teams"]}
    assert teams["checkout"]["compliance"] == 100.0  # 4 pairs, all passing
    assert teams["search"]["compliance"] == 60.0  # 5 pairs, build-tests and alarm-gating fail
    assert (teams["search"]["enforce"], teams["search"]["warn"], teams["search"]["passing"]) == (1, 1, 0)


def test_prod_only_rules_count_for_pipelines_without_prod_stages(tmp_path: Path) -> None:
    """The documented choice: pairs do not depend on a pipeline's content (cli.md), so a prod-only
    rule that finds nothing on a preprod-only pipeline is a passing pair."""
    org = write_tree(tmp_path / "org", {"acme.yaml": "apiVersion: pipewarden/v1\nkind: OrgConfig\n"
                                                     "metadata: {name: acme}\nteams: [t]\n"})
    text = pipeline("p", "t", 1).split("  - name: prod\n")[0]  # only the beta stage
    fleet = write_tree(tmp_path / "f", {"p/pipeline.yaml": text})
    data = json_report("--org-config", str(org), str(fleet))
    findings_rules = {r["rule"] for r in data["rules"]}
    assert "requires-preprod" not in findings_rules  # prod-only: nothing found
    # 19 rules at warn or enforce by default (full-automation is off); deployment-hygiene fails
    assert findings_rules == {"deployment-hygiene"}
    assert data["teams"][0]["compliance"] == percentage(18, 19) == 94.7


@pytest.mark.parametrize(("passed", "total", "expected"), [
    (2, 3, 66.7), (1, 3, 33.3), (1, 16, 6.3), (3, 16, 18.8), (0, 5, 0.0), (5, 5, 100.0), (0, 0, None), (999, 1000, 99.9),
    (1999, 2000, 100.0),
])
def test_percentage_rounds_half_up_to_one_decimal(passed: int, total: int, expected: float | None) -> None:
    assert percentage(passed, total) == expected


def test_table_is_the_default_and_shows_every_section(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    result = report("--org-config", str(org), str(fleet))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for heading in ("Teams", "Automation levels", "Rules by pipelines failing", "Exceptions"):
        assert f"\n{heading}" in out
    line = next(line for line in out.splitlines() if line.startswith("checkout "))
    assert line.split() == ["checkout", "retail", "2", "2", "partial", "2", "0", "1", "0", "90.0%"]
    by_org = report("--org-config", str(org), str(fleet), "--by", "org").stdout
    assert "  retail" in by_org and "Orgs (totals over each subtree)" in by_org


def test_options_may_follow_paths(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    result = report(str(fleet), "--org-config", str(org), "--format", "json", "--by", "org")
    assert result.exit_code == 0, result.stderr
    assert result.json()["orgs"] == ORGS


@pytest.mark.parametrize("args", [
    ("--org", "nope"),
    ("--by", "division"),
    ("--format", "pdf"),
])
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    org, fleet = standard_fleet(tmp_path)
    result = report("--org-config", str(org), str(fleet), *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert args[1] in result.stderr


def test_missing_path_and_missing_org_config_exit_2(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    missing = report("--org-config", str(org), str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "path does not exist" in missing.stderr
    no_config = report(str(fleet))
    assert no_config.exit_code == 2 and "--org-config" in no_config.stderr
    both = report("--org-config", str(org), "--inventory", str(fleet / "x.yaml"), str(fleet))
    assert both.exit_code == 2 and "not both" in both.stderr
    bad_tree = report("--org-config", str(tmp_path / "no-such-dir"), str(fleet))
    assert bad_tree.exit_code == 2


def test_output_file(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    out = tmp_path / "report.html"
    result = report("--org-config", str(org), str(fleet), "--format", "html", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_example_fleet_reports(tmp_path: Path) -> None:
    """The shipped example fleet and org tree: every repository counted, numbers stable."""
    repo = Path(__file__).resolve().parent.parent
    result = report("--org-config", str(repo / "org-configs" / "example"),
                    "--inventory", str(repo / "examples" / "inventory.yaml"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    total = data["orgs"][0]
    assert (total["org"], total["repos"], total["pipelines"]) == ("acme", 15, 11)
    # Team `demo` owns the release demo, whose repository `make demo` makes (examples/release-demo is
    # its template, not an inventory repo); its shortcuts are the 5 permanent exceptions of platform.
    assert [t["team"] for t in data["teams"] if t["pipelines"] == 0 and t["repos"] == 0] == ["demo"]
    assert {s: len(v) for s, v in data["exceptions"].items()} == {"active": 9, "expiring": 1, "expired": 1}
    assert sum(1 for e in data["exceptions"]["active"] if e["pipelines"] == ["release-demo"]) == 5
    assert {t["team"] for t in data["teams"]} >= {"checkout", "cart", "billing", "payments", "fraud", "research"}


def test_report_shares_checks_incremental_cache(tmp_path: Path, isolated_cache: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    first = report("--org-config", str(org), str(fleet), "--format", "json")
    assert (isolated_cache / "pipewarden" / "check-cache.sqlite").is_file()
    again = report("--org-config", str(org), str(fleet), "--format", "json")
    assert again.json() == first.json()  # served from the cache, the same numbers
    (fleet / "cart-a" / "pipeline.yaml").write_text(pipeline("cart-a", "cart", 3, alarms=False))
    changed = {t["team"]: t for t in report("--org-config", str(org), str(fleet), "--format", "json").json()["teams"]}
    assert changed["cart"]["compliance"] == 100.0  # a changed file is evaluated again


def test_no_cache_leaves_no_cache(tmp_path: Path, isolated_cache: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    assert report("--org-config", str(org), str(fleet), "--no-cache", "-q").exit_code == 0
    assert not (isolated_cache / "pipewarden").exists()
