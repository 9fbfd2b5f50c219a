"""`pipewarden exceptions`: list, add, remove and renew the exceptions of an org tree."""

from __future__ import annotations

import click

from pipewarden.cli.options import (
    cache_dir_option,
    format_choice_option,
    now_option,
    org_config_option,
    parse_date,
    parse_now,
    policies_option,
    write_output,
)
from pipewarden.errors import UsageError


@click.group("exceptions")
def exceptions_group() -> None:
    """List, add, remove and renew exceptions in an org tree."""


@exceptions_group.command("list")
@org_config_option(required=True, help="Org-config directory.")
@click.option("--org", "org", metavar="NAME", help="Only exceptions granted in this node's subtree.")
@click.option("--expiring", "expiring", type=click.IntRange(min=0), metavar="DAYS",
              help="Only active exceptions that end within DAYS days.")
@click.option("--expired", "expired", is_flag=True, help="Only expired exceptions (with --expiring: either).")
@format_choice_option(["table", "json"], "table (default) or json.")
@policies_option
@now_option
def exceptions_list(org_config: str, org: str | None, expiring: int | None, expired: bool, fmt: str,
                    policies: tuple[str, ...], now: str | None) -> None:
    """The exceptions of an org tree, soonest to end first."""
    from pipewarden.lint.exceptions import org_exceptions
    from pipewarden.lint.formats import exceptions_list

    moment = parse_now(now)
    items = org_exceptions(org_config, policies, moment, org, expiring, expired)
    write_output(exceptions_list.render(items, fmt=fmt, now=moment), None)


@exceptions_group.command("add")
@click.argument("paths", nargs=-1, type=str)
@org_config_option(required=True, help="Org-config directory.")
@click.option("--org", "org", required=True, metavar="NAME", help="The org node that grants the exception.")
@click.option("--rule", "rule", required=True, metavar="ID", help="The rule excepted.")
@click.option("--pipeline", "pipelines", multiple=True, metavar="NAME", help="A pipeline covered (repeatable).")
@click.option("--team", "teams", multiple=True, metavar="NAME", help="A team covered (repeatable).")
@click.option("--reason", "reason", required=True, metavar="TEXT", help="Why the exception is granted.")
@click.option("--approved-by", "approved_by", required=True, metavar="WHO", help="Who approved it.")
@click.option("--expires", "expires", metavar="DATE", help="Last day it applies (inclusive), YYYY-MM-DD.")
@click.option("--permanent", "permanent", is_flag=True, help="Never expires (instead of --expires).")
@click.option("--inventory", "inventory", metavar="FILE",
              help="Inventory of the fleet whose pipeline names --pipeline is checked against (instead of PATHs).")
@cache_dir_option("Where git repositories of the inventory are cloned (default: the user cache dir).")
@click.option("--strict", "strict", is_flag=True,
              help="Refuse (exit 2, nothing written) when a --pipeline or --team matches nothing known.")
@policies_option
@now_option
def exceptions_add(paths: tuple[str, ...], org_config: str, org: str, rule: str, pipelines: tuple[str, ...],
                   teams: tuple[str, ...], reason: str, approved_by: str, expires: str | None, permanent: bool,
                   inventory: str | None, cache_dir: str | None, strict: bool,
                   policies: tuple[str, ...], now: str | None) -> None:
    """Add an exception to an org node's file, keeping its comments and layout.

    PATHs (pipeline files or folders, as for check) or --inventory give the fleet that each
    --pipeline is checked against; a name that matches nothing known is a warning (--strict:
    refused).
    """
    from pipewarden.lint.exceptions import add_exception
    from pipewarden.orgs.edit import NewException

    if not pipelines and not teams:
        raise UsageError("exceptions add needs --pipeline NAME or --team NAME to say what it covers")
    if permanent == (expires is not None):
        raise UsageError("exceptions add needs exactly one of --expires DATE or --permanent")
    if not reason.strip() or not approved_by.strip():
        raise UsageError("--reason and --approved-by may not be empty")
    if paths and inventory is not None:
        raise UsageError("give either --inventory FILE or PATHs, not both")
    moment = parse_now(now)
    new = NewException(rule, pipelines, teams, reason, approved_by, parse_date(expires, "--expires"), permanent)
    added = add_exception(org_config, policies, moment, org, new, paths, inventory, cache_dir, strict)
    for warning in added.warnings:
        click.echo(f"pipewarden: warning: {warning}", err=True)
    click.echo(f"Added to {added.edit.file}: {'; '.join(added.edit.changes)}.")


@exceptions_group.command("remove")
@org_config_option(required=True, help="Org-config directory.")
@click.option("--org", "org", required=True, metavar="NAME", help="The org node whose exception is removed.")
@click.option("--rule", "rule", required=True, metavar="ID", help="The rule of the exception.")
@click.option("--pipeline", "pipelines", multiple=True, metavar="NAME",
              help="A pipeline the exception covers (repeatable), to name one of several.")
@click.option("--team", "teams", multiple=True, metavar="NAME",
              help="A team the exception covers (repeatable), to name one of several.")
@policies_option
@now_option
def exceptions_remove(org_config: str, org: str, rule: str, pipelines: tuple[str, ...], teams: tuple[str, ...],
                      policies: tuple[str, ...], now: str | None) -> None:
    """Remove the one matching exception of an org node, keeping the file's other lines.

    Exit 2 when no entry or several entries match.
    """
    from pipewarden.lint.exceptions import remove_exception

    edit = remove_exception(org_config, policies, parse_now(now), org, rule, pipelines, teams)
    click.echo(f"Removed from {edit.file}: {'; '.join(edit.changes)}.")


@exceptions_group.command("renew")
@org_config_option(required=True, help="Org-config directory.")
@click.option("--org", "org", required=True, metavar="NAME", help="The org node whose exception is renewed.")
@click.option("--rule", "rule", required=True, metavar="ID", help="The rule of the exception.")
@click.option("--pipeline", "pipelines", multiple=True, metavar="NAME",
              help="A pipeline the exception covers (repeatable), to name one of several.")
@click.option("--team", "teams", multiple=True, metavar="NAME",
              help="A team the exception covers (repeatable), to name one of several.")
@click.option("--expires", "expires", required=True, metavar="DATE", help="The new last day (inclusive), YYYY-MM-DD.")
@policies_option
@now_option
def exceptions_renew(org_config: str, org: str, rule: str, pipelines: tuple[str, ...], teams: tuple[str, ...],
                     expires: str, policies: tuple[str, ...], now: str | None) -> None:
    """Set the end date of the one matching exception of an org node; only that line changes.

    The date is checked like add's (not in the past, within the cap). Exit 2 when no entry or
    several entries match, or the entry is permanent.
    """
    from pipewarden.lint.exceptions import renew_exception

    date = parse_date(expires, "--expires")
    assert date is not None
    edit = renew_exception(org_config, policies, parse_now(now), org, rule, pipelines, teams, date)
    if not edit.changed:
        click.echo(f"Nothing to change in {edit.file}: the exception already ends on {date.isoformat()}.")
        return
    click.echo(f"Renewed in {edit.file}: {'; '.join(edit.changes)}.")
