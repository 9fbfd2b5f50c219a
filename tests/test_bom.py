"""A leading UTF-8 byte order mark is skipped in every file pipewarden reads (issue 11, item 4).

Some Windows editors save UTF-8 with a BOM. Pipelines, org configs, inventories, Rego rules
(their METADATA included) and Rego tests must all read exactly as without it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import GOOD_PIPELINE, NOW, run_cli
from pipewarden.policy.catalog import load_catalog

BOM = "\ufeff"
EXAMPLE_RULE = Path(__file__).parent.parent / "org-configs" / "example" / "policies" / "no-friday-afternoon"


def with_bom(path: Path) -> None:
    path.write_bytes(BOM.encode("utf-8") + path.read_bytes())


def rule_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "policies" / "no-friday-afternoon"
    shutil.copytree(EXAMPLE_RULE, folder)
    for file in folder.iterdir():
        with_bom(file)
    return tmp_path / "policies"


def test_rule_and_its_tests_with_a_bom_work(tmp_path: Path) -> None:
    policies = rule_folder(tmp_path)
    result = run_cli("policy", "test", str(policies))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
    catalog = load_catalog((str(policies),))
    assert catalog.rules["no-friday-afternoon"].title


def test_check_with_a_bom_rule_gives_the_same_findings(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "pipeline.yaml").write_text(GOOD_PIPELINE)
    plain = run_cli("check", str(fleet), "--policies", str(EXAMPLE_RULE.parent), "--format", "json", "--now", NOW)
    marked = run_cli("check", str(fleet), "--policies", str(rule_folder(tmp_path)), "--format", "json",
                     "--now", NOW)
    assert marked.exit_code == plain.exit_code, marked.stderr
    assert [(f["rule"], f["line"], f["message"]) for f in marked.json()["findings"]] == [
        (f["rule"], f["line"], f["message"]) for f in plain.json()["findings"]]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_pipeline_org_config_and_inventory_with_a_bom(tmp_path: Path, encoding: str) -> None:
    fleet = tmp_path / "fleet" / "checkout"
    fleet.mkdir(parents=True)
    (fleet / "pipeline.yaml").write_bytes(GOOD_PIPELINE.encode(encoding))
    org = tmp_path / "org"
    org.mkdir()
    (org / "acme.yaml").write_bytes(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n".encode(encoding))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_bytes(
        "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n  - {name: checkout, path: fleet/checkout}\n"
        .encode(encoding))
    check = run_cli("check", str(tmp_path / "fleet"), "--org-config", str(org), "--format", "json", "--now", NOW)
    assert check.exit_code in (0, 1), check.stderr
    assert not [f for f in check.json()["findings"] if f["rule"] in ("valid-definition", "unknown-team")]
    report = run_cli("report", "--org-config", str(org), "--inventory", str(inventory), "--format", "json",
                     "--now", NOW)
    assert report.exit_code == 0, report.stderr
    assert [t["team"] for t in report.json()["teams"]] == ["checkout"]


def test_a_bom_inside_the_text_is_not_skipped(tmp_path: Path) -> None:
    """Only a leading mark is an encoding signature; one later in the file is text."""
    (tmp_path / "pipeline.yaml").write_text(GOOD_PIPELINE.replace("kind: Pipeline", f"kind: {BOM}Pipeline"))
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 1
    assert result.json()["findings"][0]["rule"] == "valid-definition"
