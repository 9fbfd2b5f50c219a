"""`pipewarden config validate`: load an org-config tree on its own and say what it holds."""

from __future__ import annotations

import click

from pipewarden.cli.options import now_option, parse_now, policies_option
from pipewarden.errors import UsageError


@click.group("config")
def config() -> None:
    """Work with org-config trees."""


@config.command("validate")
@click.argument("directory", metavar="[DIR]", required=False)
@policies_option
@now_option
def config_validate(directory: str | None, policies: tuple[str, ...], now: str | None) -> None:
    """Check an org-config tree on its own (exit 2 with file and line on the first error; warnings
    on stderr for what is valid but leaves a gap, such as a root that does not enforce unknown-team).
    DIR defaults to `org_config` of the project config (.pipewarden.yaml)."""
    from pipewarden.lint.config_check import validate_config

    if directory is None:
        raise UsageError("config validate: give the org-config folder DIR, or set org_config in .pipewarden.yaml")

    checked = validate_config(directory, policies, parse_now(now))
    tree = checked.tree
    exceptions = sum(len(n.exceptions) for n in tree.nodes.values())
    click.echo(
        f"{directory}: valid org tree: root {tree.root!r}, {len(tree.nodes)} node(s), "
        f"{len(tree.team_nodes)} team(s), {exceptions} exception(s)"
    )
    for warning in checked.warnings:
        click.echo(f"pipewarden: warning: {warning}", err=True)
