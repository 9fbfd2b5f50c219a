"""`rules promote`: the impact preview equals what `check` reports after the edit; dry runs write nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import GOOD_PIPELINE, NOW, run_cli

RULE = "canary-bake-time"

ACME = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: acme
rules:
  auto-rollback:
    level: enforce             # every org rolls back automatically
"""

RETAIL = """\
# Retail: owned by dana.
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: retail
  parent: acme
teams: [checkout, cart, billing]
rules:
  canary-bake-time:
    level: warn
    enforce_from: 2027-01-15   # announced in October; warn until then
    params: {min_minutes: 60}
exceptions:
  - rule: canary-bake-time
    teams: [billing]
    reason: the batch canary has no traffic to bake on
    approved_by: dana
    expires: 2027-06-30
"""

PAYMENTS = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: payments
  parent: retail
teams: [payments]
rules:
  canary-bake-time:
    level: warn                # payments decides on its own
"""

PLATFORM = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: platform
  parent: acme
teams: [search]
"""

SHORT_BAKE = ("duration: 60m               # wait", "duration: 30m               # wait")
MANUAL_ROLLBACK = ("rollback: automatic           #", "rollback: manual           #")


def pipeline(index: int, name: str, team: str, *changes: tuple[str, str]) -> str:
    """The clean example pipeline under another name and team, with its own hosts (so that
    single-release-process sees distinct applications) and the given (old, new) edits."""
    text = GOOD_PIPELINE.replace("127.0.0.1", f"10.0.{index}.1")
    text = text.replace("name: checkout-service", f"name: {name}", 1).replace("team: checkout", f"team: {team}", 1)
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def setup(tmp_path: Path) -> tuple[Path, Path]:
    orgs = tmp_path / "orgs"
    orgs.mkdir()
    for name, text in {"acme.yaml": ACME, "retail.yaml": RETAIL, "payments.yaml": PAYMENTS,
                       "platform.yaml": PLATFORM}.items():
        (orgs / name).write_text(text)
    fleet = tmp_path / "fleet"
    pipelines = {
        "checkout-service": pipeline(1, "checkout-service", "checkout", SHORT_BAKE),  # newly blocked
        "cart-service": pipeline(2, "cart-service", "cart"),  # clean
        "cart-worker": pipeline(3, "cart-worker", "cart", SHORT_BAKE, MANUAL_ROLLBACK),  # blocked already
        "billing-batch": pipeline(4, "billing-batch", "billing", SHORT_BAKE),  # excepted
        "payments-api": pipeline(5, "payments-api", "payments", SHORT_BAKE),  # payments keeps warn
        "search-api": pipeline(6, "search-api", "search", SHORT_BAKE),  # outside retail
    }
    for name, text in pipelines.items():
        (fleet / name).mkdir(parents=True)
        (fleet / name / "pipeline.yaml").write_text(text)
    return orgs, fleet


def promote(orgs: Path, fleet: Path, *extra: str) -> Any:
    result = run_cli("rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW,
                     "--format", "json", "--yes", *extra, str(fleet))
    assert result.exit_code == 0, result.stderr
    return result.json()


def check(orgs: Path, fleet: Path, now: str = NOW) -> Any:
    result = run_cli("check", str(fleet), "--org-config", str(orgs), "--format", "json", "--now", now)
    assert result.exit_code in (0, 1), result.stderr
    return result.json()


def in_retail(finding: dict[str, Any]) -> bool:
    return finding["team"] in {"checkout", "cart", "billing", "payments"}


def names(items: list[dict[str, Any]]) -> list[str]:
    return [i["pipeline"] for i in items]


def test_preview_equals_check_at_the_new_level(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    preview = promote(orgs, fleet)
    assert preview["written"] is True
    after = check(orgs, fleet)
    expected = [f for f in after["findings"] if f["rule"] == RULE and in_retail(f)]
    assert preview["findings"] == expected
    # And the numbers people read agree with those findings.
    failing = {f["pipeline"] for f in expected if f["level"] == "enforce" and not f["excepted"]}
    assert failing == {"checkout-service", "cart-worker"}
    assert {f["pipeline"] for f in expected if f["excepted"]} == {"billing-batch"}
    assert {f["pipeline"] for f in expected if f["level"] == "warn"} == {"payments-api"}
    # checkout-service fails because of the promotion; cart-worker fails today already (manual
    # rollback); payments sets its own level: not affected; cart-service has no finding.
    assert preview["totals"] == {"pipelines": 5, "newly_failing": 1, "already_failing": 1, "excepted": 1,
                                 "warning": 0, "not_affected": 1, "no_finding": 1, "teams": 4,
                                 "teams_newly_failing": 1, "newly_blocked": 1}


def test_preview_per_team_and_newly_blocked(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    preview = promote(orgs, fleet, "--dry-run")
    teams = {t["team"]: t for t in preview["teams"]}
    assert sorted(teams) == ["billing", "cart", "checkout", "payments"]  # search is outside retail
    assert names(teams["checkout"]["newly_failing"]) == ["checkout-service"]
    assert teams["checkout"]["blocked_before"] is False and teams["checkout"]["newly_blocked"] is True
    assert names(teams["cart"]["already_failing"]) == ["cart-worker"] and teams["cart"]["newly_failing"] == []
    assert names(teams["cart"]["no_finding"]) == ["cart-service"]
    assert teams["cart"]["blocked_before"] is True and teams["cart"]["newly_blocked"] is False
    assert names(teams["billing"]["excepted"]) == ["billing-batch"] and teams["billing"]["newly_failing"] == []
    assert names(teams["payments"]["not_affected"]) == ["payments-api"] and teams["payments"]["org"] == "payments"
    assert teams["payments"]["warning"] == []
    for team in preview["teams"]:  # each pipeline in exactly one group
        groups = ("newly_failing", "already_failing", "excepted", "warning", "not_affected", "no_finding")
        assert sum(len(team[g]) for g in groups) == team["pipelines"]
    assert preview["newly_blocked"] == ["checkout"]
    assert preview["unaffected"] == [{"org": "payments", "level": "warn"}]
    assert preview["current"] == {"level": "warn", "enforce_from": "2027-01-15"}
    assert preview["planned"] == {"level": "enforce", "enforce_from": None}
    assert preview["changes"] == ["level: enforce", "enforce_from removed"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in orgs.iterdir()}
    preview = promote(orgs, fleet, "--dry-run")
    assert preview["dry_run"] is True and preview["written"] is False
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in orgs.iterdir()} == before
    assert sorted(p.name for p in orgs.iterdir()) == sorted(before)  # no scratch file left behind
    text = run_cli("rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW,
                   "--dry-run", str(fleet))
    assert text.exit_code == 0
    assert "Dry run: would write" in text.stdout and "nothing written" in text.stdout
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in orgs.iterdir()} == before


def test_the_write_changes_only_the_schedule_lines(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    promote(orgs, fleet)
    expected = RETAIL.replace(
        "    level: warn\n    enforce_from: 2027-01-15   # announced in October; warn until then\n",
        "    level: enforce\n",
    )
    assert (orgs / "retail.yaml").read_text().splitlines() == expected.splitlines()


def test_schedule_preview_equals_check_on_the_date(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    preview = promote(orgs, fleet, "--from", "2027-03-01")
    assert preview["planned"] == {"level": "warn", "enforce_from": "2027-03-01"}
    assert preview["previewed_level"] == "enforce"
    text = (orgs / "retail.yaml").read_text()
    assert "    enforce_from: 2027-03-01   # announced in October; warn until then\n" in text
    # Today the rule warns with the new date; on the date, check reports what the preview showed.
    today = [f for f in check(orgs, fleet)["findings"] if f["rule"] == RULE and f["team"] == "checkout"]
    assert [(f["level"], f["enforce_from"]) for f in today] == [("warn", "2027-03-01")]
    on_the_date = check(orgs, fleet, "2027-03-01T00:00:00Z")
    assert preview["findings"] == [f for f in on_the_date["findings"] if f["rule"] == RULE and in_retail(f)]


def test_text_output_says_when_enforcement_starts(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    result = run_cli("rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW,
                     "--from", "2027-03-01", "--dry-run", str(fleet))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "now:  warn, enforced from 2027-01-15, in 50 days" in out
    assert "new:  warn, enforced from 2027-03-01, in 95 days" in out
    assert "newly blocked: checkout." in out
    assert ("Totals: 5 pipelines: 1 newly failing, 1 already failing, 1 covered by exceptions, 0 would warn, "
            "1 not affected, 1 without a finding.") in out
    assert "Not affected: org payments sets its own level for canary-bake-time (warn)." in out
    assert "checkout/checkout-service" in out and "excepted by retail until 2027-06-30" in out
    # The impact comes before the outcome line.
    assert out.index("Totals:") < out.index("Dry run:")


def test_promotion_with_an_inventory(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n"
        "  - {name: checkout-service, path: fleet/checkout-service, team: checkout}\n"
        "  - {name: cart-ui, path: fleet/cart-ui, team: cart}\n"
    )
    (fleet / "cart-ui").mkdir()
    result = run_cli("rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW,
                     "--format", "json", "--dry-run", "--inventory", str(inventory))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert [(t["team"], names(t["newly_failing"])) for t in data["teams"]] == [("checkout", ["checkout-service"])]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-11-01"), "is not in the future"),
        (("--from", "2027-03-01", "--to", "warn"), "cannot be combined"),
        (("--from", "next week"), "is not a date"),
        (("--to", "loud"), "Invalid value for '--to'"),
    ],
)
def test_bad_options_are_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    orgs, fleet = setup(tmp_path)
    result = run_cli("rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW,
                     *args, str(fleet))
    assert result.exit_code == 2
    assert message in result.stderr
    assert (orgs / "retail.yaml").read_text() == RETAIL


def test_inventory_and_paths_together_are_refused(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    result = run_cli("rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW,
                     "--inventory", str(tmp_path / "inventory.yaml"), str(fleet))
    assert result.exit_code == 2 and "not both" in result.stderr


def test_turning_a_rule_on_previews_its_findings(tmp_path: Path) -> None:
    """A rule that is off now is evaluated for the preview all the same."""
    orgs, fleet = setup(tmp_path)
    (orgs / "platform.yaml").write_text(PLATFORM + "rules:\n  canary-bake-time: {level: off}\n")
    result = run_cli("rules", "promote", RULE, "--org", "platform", "--org-config", str(orgs), "--now", NOW,
                     "--format", "json", "--yes", str(fleet))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert [(t["team"], names(t["newly_failing"]), t["newly_blocked"]) for t in data["teams"]] == [
        ("search", ["search-api"], True)
    ]
    assert (orgs / "platform.yaml").read_text().endswith("rules:\n  canary-bake-time: {level: enforce}\n")
    after = [f for f in check(orgs, fleet)["findings"] if f["rule"] == RULE and f["team"] == "search"]
    assert data["findings"] == after
