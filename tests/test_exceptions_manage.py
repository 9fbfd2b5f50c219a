"""Issue 15 item 8: exceptions you can manage. `exceptions add` warns (with --strict: refuses)
when a --pipeline or --team matches nothing known; `exceptions remove` and `exceptions renew`
edit only the entry named, keeping the file's comments and layout; a finding whose exception
expired in the last 30 days says so."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.load.yamlsafe import parse_yaml
from pipewarden.orgs.tree import load_org_tree
from pipewarden.policy.catalog import load_catalog
from test_exceptions_cmd import RETAIL, write_tree

TODAY = dt.date(2026, 11, 26)


def _run(command: str, orgs: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("exceptions", command, "--org-config", str(orgs), "--now", NOW, *args)
    return result.exit_code, result.stdout, result.stderr


def _loads(orgs: Path) -> None:
    load_org_tree(str(orgs), load_catalog(()), TODAY)


# --- remove ------------------------------------------------------------------------------------

LAYOUT = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: retail
  parent: acme
teams: [checkout, cart, billing]
exceptions:
  # billing first
  - rule: auto-rollback        # tooling under way
    teams: [billing]
    reason: rollback tooling for the mainframe bridge is being built
    approved_by: dana
    expires: 2027-01-31
    # ask dana before renewing this one
  # the cart migration
  - rule: deployment-window
    pipelines: [cart-service]
    reason: night deploys while the cart database migration ran
    approved_by: dana
    expires: '2026-12-31'      # quoted on purpose
  - rule: deployment-window
    pipelines: [checkout-service]
    reason: checkout batch
    approved_by: dana
    expires: 2027-01-15

# Reviewed every month by dana.
"""


def _layout(tmp_path: Path, text: str = LAYOUT) -> Path:
    orgs = write_tree(tmp_path)
    (orgs / "retail.yaml").write_text(text)
    return orgs


def test_remove_deletes_only_the_entry_lines(tmp_path: Path) -> None:
    orgs = _layout(tmp_path)
    code, out, err = _run("remove", orgs, "--org", "retail", "--rule", "auto-rollback")
    assert code == 0, err
    assert out == (f"Removed from {orgs / 'retail.yaml'}: removed the exception to auto-rollback for team billing, "
                   "until 2027-01-31 (line 9).\n")
    # The entry and the comment inside it go; the comments around it stay.
    assert (orgs / "retail.yaml").read_text() == LAYOUT.replace(
        "  - rule: auto-rollback        # tooling under way\n"
        "    teams: [billing]\n"
        "    reason: rollback tooling for the mainframe bridge is being built\n"
        "    approved_by: dana\n"
        "    expires: 2027-01-31\n"
        "    # ask dana before renewing this one\n", "")
    _loads(orgs)


def test_remove_the_last_entry_keeps_the_closing_comment(tmp_path: Path) -> None:
    orgs = _layout(tmp_path)
    code, _, err = _run("remove", orgs, "--org", "retail", "--rule", "deployment-window", "--pipeline", "checkout-service")
    assert code == 0, err
    assert (orgs / "retail.yaml").read_text() == LAYOUT.replace(
        "  - rule: deployment-window\n"
        "    pipelines: [checkout-service]\n"
        "    reason: checkout batch\n"
        "    approved_by: dana\n"
        "    expires: 2027-01-15\n", "")


def test_remove_the_only_entry_leaves_an_empty_list(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    assert _run("remove", orgs, "--org", "platform", "--rule", "synthetic-monitoring")[0] == 0
    text = (orgs / "platform.yaml").read_text()
    assert text.endswith("exceptions: []\n") and "synthetic-monitoring" not in text
    assert parse_yaml(text).value["exceptions"] == []
    _loads(orgs)


def test_remove_refuses_none_and_several(tmp_path: Path) -> None:
    orgs = _layout(tmp_path)
    code, _, err = _run("remove", orgs, "--org", "retail", "--rule", "deployment-window")
    assert code == 2 and err.count("\n") == 1
    assert "2 exceptions to deployment-window of org 'retail'" in err
    assert "line 16: exception to deployment-window for cart-service, until 2026-12-31" in err
    assert "line 21: exception to deployment-window for checkout-service, until 2027-01-15" in err
    assert "add --pipeline or --team to name the one to remove" in err
    code, _, err = _run("remove", orgs, "--org", "retail", "--rule", "deployment-window", "--pipeline", "search-api")
    assert code == 2 and "has no exception to deployment-window covering search-api; its exceptions to" in err
    code, _, err = _run("remove", orgs, "--org", "retail", "--rule", "canary-first")
    assert code == 2 and "has no exception to canary-first;" in err
    code, _, err = _run("remove", orgs, "--org", "nope", "--rule", "canary-first")
    assert code == 2 and "org 'nope' is not a node" in err
    assert (orgs / "retail.yaml").read_text() == LAYOUT


def test_remove_from_a_flow_list_and_a_crlf_file(tmp_path: Path) -> None:
    flow = RETAIL.split("exceptions:")[0] + (
        "exceptions: [{rule: auto-rollback, teams: [billing], reason: r, approved_by: dana, expires: 2027-01-31},\n"
        "  {rule: canary-first, teams: [cart], reason: r, approved_by: dana, permanent: true}]  # two\n"
    )
    orgs = _layout(tmp_path, flow)
    assert _run("remove", orgs, "--org", "retail", "--rule", "canary-first")[0] == 0
    assert [e["rule"] for e in parse_yaml((orgs / "retail.yaml").read_text()).value["exceptions"]] == ["auto-rollback"]
    _loads(orgs)
    (orgs / "retail.yaml").write_bytes(LAYOUT.replace("\n", "\r\n").encode())
    assert _run("remove", orgs, "--org", "retail", "--rule", "auto-rollback")[0] == 0
    after = (orgs / "retail.yaml").read_bytes()
    assert b"auto-rollback" not in after and after.count(b"\r\n") == after.count(b"\n")
    assert after.endswith(b"# Reviewed every month by dana.\r\n")


ANCHORED = RETAIL.split("exceptions:")[0] + """\
exceptions:
  - &night
    rule: deployment-window
    pipelines: [cart-service]
    reason: night deploys
    approved_by: dana
    expires: 2027-01-31
  - <<: *night
    pipelines: [checkout-service]
# end
"""


def test_remove_an_entry_whose_anchor_another_uses(tmp_path: Path) -> None:
    orgs = _layout(tmp_path, ANCHORED)
    code, out, err = _run("remove", orgs, "--org", "retail", "--rule", "deployment-window", "--pipeline", "cart-service")
    assert code == 0, err
    assert "held the anchor &night" in out
    [entry] = parse_yaml((orgs / "retail.yaml").read_text()).value["exceptions"]
    assert entry == {"rule": "deployment-window", "pipelines": ["checkout-service"], "reason": "night deploys",
                     "approved_by": "dana", "expires": "2027-01-31"}
    _loads(orgs)


# --- renew -------------------------------------------------------------------------------------


def test_renew_changes_only_the_date(tmp_path: Path) -> None:
    orgs = _layout(tmp_path)
    code, out, err = _run("renew", orgs, "--org", "retail", "--rule", "deployment-window", "--pipeline", "cart-service",
                          "--expires", "2027-02-20")
    assert code == 0, err
    assert "exception to deployment-window for cart-service (line 16): expires 2026-12-31 -> 2027-02-20" in out
    # The quotes and the comment of the line stay.
    assert (orgs / "retail.yaml").read_text() == LAYOUT.replace(
        "    expires: '2026-12-31'      # quoted on purpose\n", "    expires: '2027-02-20'      # quoted on purpose\n")
    code, out, _ = _run("renew", orgs, "--org", "retail", "--rule", "deployment-window", "--pipeline", "cart-service",
                        "--expires", "2027-02-20")
    assert code == 0 and out.startswith("Nothing to change")


def test_renew_through_a_merge_key_touches_no_other_entry(tmp_path: Path) -> None:
    orgs = _layout(tmp_path, ANCHORED)
    code, _, err = _run("renew", orgs, "--org", "retail", "--rule", "deployment-window", "--pipeline",
                        "checkout-service", "--expires", "2027-02-01")
    assert code == 0, err
    first, second = parse_yaml((orgs / "retail.yaml").read_text()).value["exceptions"]
    assert (first["expires"], second["expires"]) == ("2027-01-31", "2027-02-01")
    assert "&night" in (orgs / "retail.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rule", "auto-rollback", "--expires", "2026-11-01"), "is in the past"),
        (("--rule", "auto-rollback", "--expires", "2027-06-01"), "at most 90 days"),
        (("--rule", "auto-rollback", "--expires", "later"), "is not a date"),
        (("--rule", "deployment-window", "--expires", "2027-01-01"), "name the one to renew"),
    ],
)
def test_renew_refusals(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    orgs = _layout(tmp_path)
    code, _, err = _run("renew", orgs, "--org", "retail", *args)
    assert code == 2 and message in err and err.count("\n") == 1
    assert (orgs / "retail.yaml").read_text() == LAYOUT


def test_renew_a_permanent_exception_is_refused(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    code, _, err = _run("renew", orgs, "--org", "acme", "--rule", "requires-preprod", "--expires", "2027-01-01")
    assert code == 2 and "never expires" in err


# --- add: names that match nothing -----------------------------------------------------------


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    for name, team in (("cart-service", "cart"), ("search-api", "search"), ("legacy-tool", "ghosts")):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "pipeline.yaml").write_text(good_pipeline(("name: checkout-service", f"name: {name}"),
                                                            ("team: checkout", f"team: {team}")))
    (root / "ci").mkdir()
    (root / "ci" / "pipeline.yml").write_text("steps:\n  - command: make\n")  # another tool's file
    return root


ADD = ("--rule", "canary-first", "--reason", "single host", "--approved-by", "dana", "--expires", "2027-01-31")


def test_add_warns_about_a_pipeline_the_fleet_does_not_have(tmp_path: Path, fleet: Path) -> None:
    orgs = write_tree(tmp_path)
    code, out, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "cart-servce", str(fleet))
    assert code == 0 and out.startswith("Added to")
    assert err == (f"pipewarden: warning: --pipeline 'cart-servce' matches no pipeline in {fleet} (3 pipelines); "
                   "did you mean 'cart-service'?\n")
    assert "cart-servce" in (orgs / "retail.yaml").read_text()


def test_strict_refuses_and_writes_nothing(tmp_path: Path, fleet: Path) -> None:
    orgs = write_tree(tmp_path)
    code, out, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "cart-servce", "--strict", str(fleet))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("pipewarden: error: --strict: nothing written: --pipeline 'cart-servce' matches no pipeline")
    assert (orgs / "retail.yaml").read_text() == RETAIL
    # A known name passes --strict; so does an undeclared team that has pipelines (they belong to the root).
    assert _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "cart-service", "--strict", str(fleet))[0] == 0
    assert _run("add", orgs, "--org", "acme", *ADD, "--team", "ghosts", "--strict", str(fleet))[0] == 0


def test_a_pipeline_outside_the_subtree_would_not_be_covered(tmp_path: Path, fleet: Path) -> None:
    orgs = write_tree(tmp_path)
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "search-api", str(fleet))
    assert code == 0
    assert "--pipeline 'search-api' belongs to team 'search' of org 'platform', outside the subtree of 'retail'" in err
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "search-api", "--strict", str(fleet))
    assert code == 2


def test_teams_without_a_fleet_and_pipelines_without_one(tmp_path: Path) -> None:
    orgs = write_tree(tmp_path)
    code, _, err = _run("add", orgs, "--org", "acme", *ADD, "--team", "Cart")
    assert code == 0 and err == "pipewarden: warning: --team 'Cart' is in no org node; did you mean 'cart'?\n"
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "cart-service")
    assert code == 0 and "--pipeline names were not checked: give the fleet (PATH ... or --inventory FILE)" in err
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "cart-service", "--strict")
    assert code == 2 and "give the fleet" in err
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--team", "cart", "--strict")
    assert code == 0, err


def test_add_with_an_inventory(tmp_path: Path, fleet: Path) -> None:
    orgs = write_tree(tmp_path)
    inventory = tmp_path / "inventory.yaml"
    (tmp_path / "nowhere").mkdir()  # a repository without a pipeline file
    inventory.write_text(
        "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n"
        f"  - {{name: cart-service, path: {fleet / 'cart-service'}, team: cart}}\n"
        f"  - {{name: billing-batch, path: {tmp_path / 'nowhere'}, team: billing}}\n"
    )
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "billing-batch", "--strict",
                        "--inventory", str(inventory))
    assert code == 2 and f"matches no pipeline in the inventory {inventory} (1 pipeline)" in err
    assert _run("add", orgs, "--org", "retail", *ADD, "--pipeline", "cart-service", "--strict",
                "--inventory", str(inventory))[0] == 0
    code, _, err = _run("add", orgs, "--org", "retail", *ADD, "--team", "cart", "--inventory", str(inventory),
                        str(fleet))
    assert code == 2 and "not both" in err


# --- a finding whose exception expired recently --------------------------------------------------


def _check(fleet: Path, orgs: Path, now: str, *args: str) -> str:
    result = run_cli("check", str(fleet), "--org-config", str(orgs), "--now", now, *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.stdout


def test_a_finding_says_its_exception_expired(tmp_path: Path, fleet: Path) -> None:
    orgs = write_tree(tmp_path)
    # RETAIL's exception to deployment-window for cart-service expired on 2026-10-31.
    cart = fleet / "cart-service" / "pipeline.yaml"
    cart.write_text(cart.read_text().replace("    window: business-hours\n", "", 1))

    def window_messages(now: str) -> list[str]:
        findings = json.loads(_check(fleet, orgs, now, "--format", "json"))["findings"]
        return [f["message"] for f in findings if f["rule"] == "deployment-window" and f["pipeline"] == "cart-service"]

    [message] = window_messages(NOW)  # 26 days after
    assert message.endswith("; allowed: mon,tue,wed,thu,fri 09:00-17:00 (exception expired on 2026-10-31)")
    assert window_messages("2026-11-30T10:00:00Z")[0].endswith("(exception expired on 2026-10-31)")  # 30 days
    assert "expired" not in window_messages("2026-12-01T10:00:00Z")[0]  # 31 days
    assert "(exception expired on 2026-10-31)" in _check(fleet, orgs, NOW)
    # The note is not part of the finding's identity: the SARIF fingerprint stays.

    def fingerprint(now: str) -> str:
        run = json.loads(_check(fleet, orgs, now, "--format", "sarif"))["runs"][0]
        [result] = [r for r in run["results"] if r["ruleId"] == "deployment-window"
                    and "cart-service" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]]
        return str(result["partialFingerprints"])

    assert fingerprint(NOW) == fingerprint("2026-12-15T10:00:00Z")


def test_an_active_exception_wins_over_an_expired_one(tmp_path: Path, fleet: Path) -> None:
    orgs = write_tree(tmp_path)
    cart = fleet / "cart-service" / "pipeline.yaml"
    cart.write_text(cart.read_text().replace("    window: business-hours\n", "", 1))
    (orgs / "retail.yaml").write_text(RETAIL.replace("expires: 2027-01-31", "expires: 2027-01-31\n"
                                                     "  - rule: deployment-window\n    teams: [cart]\n"
                                                     "    reason: r\n    approved_by: dana\n    expires: 2027-01-31"))
    findings = json.loads(_check(fleet, orgs, NOW, "--format", "json"))["findings"]
    [finding] = [f for f in findings if f["rule"] == "deployment-window" and f["pipeline"] == "cart-service"]
    assert finding["excepted"] and "expired" not in finding["message"]
