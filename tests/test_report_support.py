"""Helpers for the report, inventory and history tests: small org trees and fleets with known numbers.

The standard fleet (`standard_fleet`) is built so that every number of cli.md's team rows can be
worked out by hand: the root turns off every rule except four, so each pipeline has exactly five
(pipeline, rule) pairs: valid-definition, unknown-team, build-tests, alarm-gating and
requires-preprod.
"""

from __future__ import annotations

from pathlib import Path

from conftest import CliResult, run_cli
from pipewarden.policy.catalog import load_catalog

NOW = "2026-11-27T10:00:00Z"
HEADER = "apiVersion: pipewarden/v1\nkind: OrgConfig\n"
COUNTED = ("valid-definition", "unknown-team", "build-tests", "alarm-gating", "requires-preprod")


def pipeline(name: str, team: str, net: int, *, unit_tests: bool = True, preprod: bool = True,
             alarms: bool = True, manual_promotion: bool = False) -> str:
    """A small pipeline; each flag removes one good practice. `net` keeps hosts apart across the fleet."""
    tests = "  tests: [{name: unit, type: unit, command: make test}]\n" if unit_tests else ""
    stages = ""
    if preprod:
        promotion = "    promotion: manual\n" if manual_promotion else ""
        stages += (f"  - name: beta\n    type: preprod\n    targets: [{{name: beta, hosts: [\"10.{net}.0.1:80\"]}}]\n"
                   f"{promotion}")
    gate = "    alarms: [errors]\n" if alarms else ""
    stages += f"  - name: prod\n    type: prod\n    targets: [{{name: prod, hosts: [\"10.{net}.0.2:80\"]}}]\n{gate}"
    return (
        "apiVersion: pipewarden/v1\nkind: Pipeline\n"
        f"metadata: {{name: {name}, team: {team}}}\n"
        f"build:\n  commands: [make]\n{tests}"
        "alarms:\n  errors: {metric: {source: prometheus, query: 'sum(rate(errors[1m]))'}, threshold: 1, comparison: '>'}\n"
        f"stages:\n{stages}"
    )


def root_rules() -> str:
    """Every rule off but the four counted ones (valid-definition cannot be turned off)."""
    lines = ["rules:"]
    for rule in sorted(load_catalog(()).rules):
        if rule in COUNTED or rule == "policy-error":  # policy-error cannot be turned off either
            continue
        lines.append(f"  {rule}: {{level: off}}")
    lines += ["  build-tests: {level: warn}", "  alarm-gating: {level: enforce}", "  requires-preprod: {level: warn}"]
    return "\n".join(lines) + "\n"


def node(name: str, parent: str | None = None, body: str = "") -> str:
    meta = f"metadata:\n  name: {name}\n" + (f"  parent: {parent}\n" if parent else "")
    return HEADER + meta + body


STANDARD_ORG = {
    "acme.yaml": node("acme", body=root_rules()),
    "retail.yaml": node("retail", "acme", """teams: [checkout, cart]
rules:
  requires-preprod: {level: enforce}
exceptions:
  - {rule: alarm-gating, pipelines: [cart-a], reason: "alarms <being> wired", approved_by: dana, expires: 2027-03-31}
  - {rule: build-tests, teams: [identity], reason: soon over, approved_by: dana, expires: 2026-12-10}
  - {rule: requires-preprod, teams: [cart], reason: migration done, approved_by: dana, expires: 2026-11-01}
"""),
    "platform.yaml": node("platform", "acme", """teams: [search, identity]
exceptions:
  - {rule: build-tests, teams: [identity], reason: generated code, approved_by: lee, permanent: true}
"""),
}

STANDARD_FLEET = {
    "checkout-a/pipeline.yaml": pipeline("checkout-a", "checkout", 1),
    "checkout-b/pipeline.yaml": pipeline("checkout-b", "checkout", 2, unit_tests=False, manual_promotion=True),
    "cart-a/pipeline.yaml": pipeline("cart-a", "cart", 3, preprod=False, alarms=False),
    "search-a/pipeline.yaml": "apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {name: search-a, team: search}\n"
                              "build: {commands: [make]}\nstages: []\nbogus: 1\n",
    "ghost-a/pipeline.yaml": pipeline("ghost-a", "ghost", 5),
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def standard_fleet(tmp_path: Path) -> tuple[Path, Path]:
    """(org-config dir, fleet dir) of the standard example."""
    return write_tree(tmp_path / "org", STANDARD_ORG), write_tree(tmp_path / "fleet", STANDARD_FLEET)


def report(*args: str) -> CliResult:
    return run_cli("report", "--now", NOW, *args)


