"""Rule documentation pages, generated from the rules' metadata (`make docs`)."""

from __future__ import annotations

import json
from pathlib import Path

from pipewarden.policy.catalog import Catalog
from pipewarden.policy.rule import Rule

DOCS_BASE = "docs/rules"


def rule_page(rule: Rule) -> str:
    """The Markdown page of one rule: what it checks, why, its parameters and how to comply."""
    scope = "pipelines with at least one prod stage" if rule.prod_only else "every valid pipeline"
    if rule.id == "valid-definition":
        scope = "every pipeline file"
    lines = [
        f"# `{rule.id}`: {rule.title}",
        "",
        rule.description,
        "",
        f"- Default level: `{rule.level}`",
        f"- Applies to: {scope}",
        f"- Kind: {'fleet-wide rule (sees every pipeline at once)' if rule.kind == 'fleet' else 'built into the Python core' if rule.kind == 'builtin' else 'per-pipeline Rego rule'}",
    ]
    if rule.source and not rule.custom:
        lines.append(f"- Source: `policies/{Path(rule.source).parent.name}/{Path(rule.source).name}`")
    lines += ["", "## Why", "", rule.rationale or "(no rationale given)", "", "## Parameters", ""]
    if rule.params:
        lines.append("| parameter | default |")
        lines.append("|---|---|")
        for name, value in rule.params.items():
            lines.append(f"| `{name}` | `{json.dumps(value)}` |")
        lines += ["", "Parameter schema:", "", "```json", json.dumps(rule.params_schema, indent=2), "```"]
    else:
        lines.append("None.")
    lines += ["", "## How to comply", "", rule.remediation or "(no remediation given)", ""]
    return "\n".join(lines)


def index_page(catalog: Catalog) -> str:
    lines = [
        "# Rule catalog",
        "",
        "Generated from the rules' metadata by `make docs`; do not edit by hand.",
        "",
        "| rule | title | default level | scope |",
        "|---|---|---|---|",
    ]
    for rule in sorted(catalog.rules.values(), key=lambda r: r.id):
        if rule.custom:
            continue
        scope = "prod" if rule.prod_only else ("fleet" if rule.kind == "fleet" else "all")
        lines.append(f"| [`{rule.id}`]({rule.id}.md) | {rule.title} | `{rule.level}` | {scope} |")
    return "\n".join(lines) + "\n"


def expected_pages(catalog: Catalog) -> dict[str, str]:
    """File name -> content of every generated page of the built-in catalog."""
    pages = {f"{r.id}.md": rule_page(r) for r in catalog.rules.values() if not r.custom}
    pages["index.md"] = index_page(catalog)
    return pages


def write_pages(catalog: Catalog, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_pages(catalog).items():
        path = directory / name
        path.write_text(text, "utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    from pipewarden.policy.catalog import load_catalog

    for page in write_pages(load_catalog(()), Path(DOCS_BASE)):
        print(page)
