"""`exceptions list` filters and `exceptions add` (valid entries, the cap, refusals)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conftest import NOW, run_cli
from pipewarden.orgs.tree import load_org_tree
from pipewarden.policy.catalog import load_catalog

ACME = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: acme
settings:
  max_exception_days: 90       # a quarter at most
rules:
  requires-preprod:
    level: enforce
    locked: true
exceptions:
  - rule: requires-preprod
    pipelines: [marketing-site]
    reason: static pages
    approved_by: cto-office
    permanent: true
"""

RETAIL = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: retail
  parent: acme
teams: [checkout, cart, billing]
exceptions:
  - rule: auto-rollback        # tooling under way
    teams: [billing]
    reason: rollback tooling for the mainframe bridge is being built
    approved_by: dana
    expires: 2027-01-31
  - rule: deployment-window
    pipelines: [cart-service]
    reason: night deploys while the cart database migration ran
    approved_by: dana
    expires: 2026-10-31        # expired
# Reviewed every month by dana.
"""

PLATFORM = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: platform
  parent: acme
teams: [search]
exceptions:
  - rule: synthetic-monitoring
    teams: [search]
    reason: no public endpoint
    approved_by: lee
    expires: 2026-12-10
"""


def write_tree(tmp_path: Path, acme: str = ACME) -> Path:
    orgs = tmp_path / "orgs"
    orgs.mkdir()
    for name, text in {"acme.yaml": acme, "retail.yaml": RETAIL, "platform.yaml": PLATFORM}.items():
        (orgs / name).write_text(text)
    return orgs


def listed(orgs: Path, *args: str) -> list[tuple[str, str, str]]:
    result = run_cli("exceptions", "list", "--org-config", str(orgs), "--now", NOW, "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return [(e["org"], e["rule"], e["status"]) for e in result.json()["exceptions"]]


def test_list_all_soonest_first(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    assert listed(orgs) == [
        ("retail", "deployment-window", "expired"),
        ("platform", "synthetic-monitoring", "expiring"),
        ("retail", "auto-rollback", "active"),
        ("acme", "requires-preprod", "active"),
    ]


def test_list_json_entry(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    result = run_cli("exceptions", "list", "--org-config", str(orgs), "--now", NOW, "--format", "json",
                     "--org", "platform")
    assert result.json() == {
        "version": 1,
        "generated_at": "2026-11-26T10:00:00Z",
        "exceptions": [{
            "org": "platform", "rule": "synthetic-monitoring", "pipelines": [], "teams": ["search"],
            "reason": "no public endpoint", "approved_by": "lee", "expires": "2026-12-10", "permanent": False,
            "status": "expiring", "days_left": 14, "file": str(orgs / "platform.yaml"), "line": 8,
        }],
    }


def test_list_filters(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    assert listed(orgs, "--expired") == [("retail", "deployment-window", "expired")]
    assert listed(orgs, "--expiring", "14") == [("platform", "synthetic-monitoring", "expiring")]
    assert listed(orgs, "--expiring", "13") == []
    assert listed(orgs, "--expiring", "70") == [
        ("platform", "synthetic-monitoring", "expiring"), ("retail", "auto-rollback", "active"),
    ]
    # Together: everything that needs attention; permanent exceptions never expire.
    assert listed(orgs, "--expiring", "30", "--expired") == [
        ("retail", "deployment-window", "expired"), ("platform", "synthetic-monitoring", "expiring"),
    ]
    assert listed(orgs, "--org", "retail") == [
        ("retail", "deployment-window", "expired"), ("retail", "auto-rollback", "active"),
    ]


def test_expired_depends_on_now(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    result = run_cli("exceptions", "list", "--org-config", str(orgs), "--now", "2027-02-01T00:00:00Z",
                     "--expired", "--format", "json")
    assert [e["rule"] for e in result.json()["exceptions"]] == [
        "deployment-window", "synthetic-monitoring", "auto-rollback",
    ]


def test_list_table(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    result = run_cli("exceptions", "list", "--org-config", str(orgs), "--now", NOW)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["org", "rule", "covers", "expires", "status"]
    assert "expired 26 days ago" in lines[2] and "cart-service" in lines[2]
    assert "expires in 14 days" in lines[3]
    assert "permanent" in lines[5]


def test_list_unknown_org_is_exit_2(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    result = run_cli("exceptions", "list", "--org-config", str(orgs), "--org", "nope")
    assert result.exit_code == 2 and "org 'nope' is not a node" in result.stderr


def add(orgs: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("exceptions", "add", "--org-config", str(orgs), "--now", NOW, *args)
    return result.exit_code, result.stdout, result.stderr


def test_add_writes_a_valid_entry_and_keeps_the_file(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    code, out, err = add(orgs, "--org", "retail", "--rule", "canary-bake-time", "--pipeline", "checkout-service",
                         "--reason", "canary metric lands in sprint 12", "--approved-by", "dana",
                         "--expires", "2027-01-15")
    assert code == 0, err
    assert "exception to canary-bake-time for checkout-service, until 2027-01-15" in out
    expected = RETAIL.replace(
        "# Reviewed every month by dana.\n",
        "  - rule: canary-bake-time\n"
        "    pipelines: [checkout-service]\n"
        "    reason: canary metric lands in sprint 12\n"
        "    approved_by: dana\n"
        "    expires: 2027-01-15\n"
        "# Reviewed every month by dana.\n",
    )
    assert (orgs / "retail.yaml").read_text().splitlines() == expected.splitlines()
    tree = load_org_tree(str(orgs), load_catalog(()), dt.date(2026, 11, 26))
    added = tree.nodes["retail"].exceptions[-1]
    assert (added.rule, added.pipelines, added.teams, added.approved_by, added.expires, added.permanent) == (
        "canary-bake-time", ("checkout-service",), (), "dana", dt.date(2027, 1, 15), False)
    assert ("retail", "canary-bake-time", "active") in listed(orgs, "--org", "retail")


def test_add_permanent_for_teams(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    code, _, err = add(orgs, "--org", "platform", "--rule", "canary-first", "--team", "search",
                       "--reason", "single host by design", "--approved-by", "lee", "--permanent")
    assert code == 0, err
    assert (orgs / "platform.yaml").read_text() == PLATFORM + (
        "  - rule: canary-first\n"
        "    teams: [search]\n"
        "    reason: single host by design\n"
        "    approved_by: lee\n"
        "    permanent: true\n"
    )


def test_add_respects_the_roots_cap(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    args = ("--org", "retail", "--rule", "canary-first", "--team", "cart", "--reason", "r", "--approved-by", "dana")
    code, _, err = add(orgs, *args, "--expires", "2027-02-25")  # 91 days from 2026-11-26
    assert code == 2
    assert "at most 90 days" in err and "max_exception_days" in err and "expire by 2027-02-24" in err
    assert (orgs / "retail.yaml").read_text() == RETAIL
    code, _, err = add(orgs, *args, "--expires", "2027-02-24")  # exactly 90 days
    assert code == 0, err


def test_default_cap_is_180_days(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path, ACME.replace("settings:\n  max_exception_days: 90       # a quarter at most\n", ""))
    args = ("--org", "retail", "--rule", "canary-first", "--team", "cart", "--reason", "r", "--approved-by", "dana")
    code, _, err = add(orgs, *args, "--expires", "2027-05-26")  # 181 days
    assert code == 2 and "at most 180 days (the default" in err
    code, _, err = add(orgs, *args, "--expires", "2027-05-25")  # 180 days
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rule", "requires-preprod", "--team", "cart", "--expires", "2027-01-01"), "locked by org 'acme'"),
        (("--rule", "no-such-rule", "--team", "cart", "--expires", "2027-01-01"), "unknown rule"),
        (("--rule", "valid-definition", "--team", "cart", "--expires", "2027-01-01"), "cannot be changed or excepted"),
        (("--rule", "policy-error", "--team", "cart", "--expires", "2027-01-01"), "cannot be changed or excepted"),
        (("--rule", "canary-first", "--team", "search", "--expires", "2027-01-01"), "outside the subtree of 'retail'"),
        (("--rule", "canary-first", "--team", "cart", "--expires", "2026-11-01"), "is in the past"),
        (("--rule", "canary-first", "--team", "cart", "--expires", "soon"), "is not a date"),
        (("--rule", "canary-first", "--expires", "2027-01-01"), "--pipeline NAME or --team NAME"),
        (("--rule", "canary-first", "--team", "cart"), "exactly one of --expires DATE or --permanent"),
        (("--rule", "canary-first", "--team", "cart", "--expires", "2027-01-01", "--permanent"), "exactly one of"),
    ],
)
def test_add_refusals(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    orgs = write_tree(tmp_path)
    code, _, err = add(orgs, "--org", "retail", "--reason", "r", "--approved-by", "dana", *args)
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert (orgs / "retail.yaml").read_text() == RETAIL


def test_add_to_unknown_org_is_exit_2(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    code, _, err = add(orgs, "--org", "nope", "--rule", "canary-first", "--team", "cart", "--reason", "r",
                       "--approved-by", "dana", "--permanent")
    assert code == 2 and "org 'nope' is not a node" in err
