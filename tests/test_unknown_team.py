"""A typo in `metadata.team` must not escape a team's locked rules: the `unknown-team` finding
suggests the nearest declared teams, the example org enforces and locks it at the root, and
`config validate` warns about a tree that leaves it at `warn`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NOW, good_pipeline, run_cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ORG = REPO / "org-configs" / "example"
Write = Callable[[str, str], Path]

ROOT = "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\n"
RETAIL = (
    "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: retail, parent: acme}\n"
    "teams: [cart, checkout, Carts]\n"
    "rules:\n  canary-bake-time: {level: enforce, locked: true, params: {min_minutes: 120}}\n"
)


def _unknown(result_json: dict[str, object]) -> list[dict[str, object]]:
    findings = result_json["findings"]
    assert isinstance(findings, list)
    return [f for f in findings if f["rule"] == "unknown-team"]


@pytest.mark.parametrize(
    ("team", "advice"),
    [
        # Case first: 'Carts' is close to 'Cart' too, but only 'cart' is the same name.
        ("Cart", "did you mean 'cart'? Fix metadata.team, or add the team to an org's 'teams'"),
        ("CARTS", "did you mean 'Carts'? Fix metadata.team, or add the team to an org's 'teams'"),
        ("chekout", "did you mean 'checkout'? Fix metadata.team, or add the team to an org's 'teams'"),
        ("zebra", "add it to an org's 'teams' or fix metadata.team"),
    ],
)
def test_unknown_team_suggests_the_nearest_declared_teams(write: Write, tmp_path: Path, team: str, advice: str) -> None:
    write("orgs/acme.yaml", ROOT)
    write("orgs/retail.yaml", RETAIL)
    write("svc/pipeline.yaml", good_pipeline(("team: checkout", f"team: {team}")))
    result = run_cli("check", str(tmp_path / "svc"), "--org-config", str(tmp_path / "orgs"), "--format", "json",
                     "--now", NOW)
    [finding] = _unknown(result.json())
    assert finding["message"] == f"team {team!r} is in no org node; {advice}"
    assert finding["level"] == "warn" and finding["path"] == "metadata.team"


def test_several_close_names_are_all_offered(write: Write, tmp_path: Path) -> None:
    write("orgs/acme.yaml", ROOT + "teams: [payments, payment, billing]\n")
    write("svc/pipeline.yaml", good_pipeline(("team: checkout", "team: paymentz")))
    result = run_cli("check", str(tmp_path / "svc"), "--org-config", str(tmp_path / "orgs"), "--format", "json",
                     "--now", NOW)
    [finding] = _unknown(result.json())
    assert "did you mean 'payment' or 'payments'? Fix metadata.team" in str(finding["message"])


def test_in_the_example_org_a_mistyped_team_fails_the_check(tmp_path: Path) -> None:
    """The issue's case: `team: Cart` moved cart-service to the root's lenient settings, its locked
    enforce findings became warnings and the check passed."""
    fleet = tmp_path / "cart-service"
    shutil.copytree(REPO / "examples" / "cart-service", fleet)
    pipeline = fleet / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("team: cart", "team: Cart", 1))
    result = run_cli("check", str(fleet), "--org-config", str(EXAMPLE_ORG), "--format", "json", "--now", NOW)
    assert result.exit_code == 1
    [finding] = _unknown(result.json())
    assert finding["level"] == "enforce" and "did you mean 'cart'?" in str(finding["message"])


def test_the_example_root_locks_unknown_team(tmp_path: Path) -> None:
    orgs = tmp_path / "orgs"
    shutil.copytree(EXAMPLE_ORG, orgs)
    retail = orgs / "retail.yaml"
    retail.write_text(retail.read_text().replace("rules:\n", "rules:\n  unknown-team: {level: warn}\n", 1))
    result = run_cli("config", "validate", str(orgs))
    assert result.exit_code == 2
    assert "unknown-team" in result.stderr and "locked by org 'acme'" in result.stderr


def test_config_validate_is_quiet_about_the_example_org() -> None:
    result = run_cli("config", "validate", str(EXAMPLE_ORG), "--now", NOW)
    assert result.exit_code == 0
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("rules", "said", "line"),
    [
        ("", "unknown-team is at warn in the root 'acme'", 3),
        ("rules:\n  unknown-team: {level: warn, enforce_from: 2027-03-01}\n",
         "unknown-team is at warn until 2027-03-01 in the root 'acme'", 5),
        ("rules:\n  unknown-team: {level: off}\n", "unknown-team is at off in the root 'acme'", 5),
    ],
    ids=["default", "scheduled", "off"],
)
def test_config_validate_warns_when_the_root_does_not_enforce_unknown_team(
    write: Write, tmp_path: Path, rules: str, said: str, line: int
) -> None:
    root = write("orgs/acme.yaml", ROOT + rules)
    write("orgs/retail.yaml", RETAIL)
    result = run_cli("config", "validate", str(root.parent), "--now", NOW)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{root.parent}: valid org tree")
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"pipewarden: warning: {root}:{line}: {said}: ")
    assert "'unknown-team: {level: enforce, locked: true}'" in warning


def test_no_warning_once_the_root_enforces_it(write: Write, tmp_path: Path) -> None:
    root = write("orgs/acme.yaml", ROOT + "rules:\n  unknown-team: {level: enforce, locked: true}\n")
    result = run_cli("config", "validate", str(root.parent), "--now", NOW)
    assert (result.exit_code, result.stderr) == (0, "")
