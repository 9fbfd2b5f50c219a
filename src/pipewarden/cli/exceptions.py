"""`pipewarden exceptions`: list and add the exceptions of an org tree."""

from __future__ import annotations

import click

from pipewarden.cli.options import (
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
    """List and add exceptions in an org tree."""


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
@org_config_option(required=True, help="Org-config directory.")
@click.option("--org", "org", required=True, metavar="NAME", help="The org node that grants the exception.")
@click.option("--rule", "rule", required=True, metavar="ID", help="The rule excepted.")
@click.option("--pipeline", "pipelines", multiple=True, metavar="NAME", help="A pipeline covered (repeatable).")
@click.option("--team", "teams", multiple=True, metavar="NAME", help="A team covered (repeatable).")
@click.option("--reason", "reason", required=True, metavar="TEXT", help="Why the exception is granted.")
@click.option("--approved-by", "approved_by", required=True, metavar="WHO", help="Who approved it.")
@click.option("--expires", "expires", metavar="DATE", help="Last day it applies (inclusive), YYYY-MM-DD.")
@click.option("--permanent", "permanent", is_flag=True, help="Never expires (instead of --expires).")
@policies_option
@now_option
def exceptions_add(org_config: str, org: str, rule: str, pipelines: tuple[str, ...], teams: tuple[str, ...],
                   reason: str, approved_by: str, expires: str | None, permanent: bool,
                   policies: tuple[str, ...], now: str | None) -> None:
    """Add an exception to an org node's file, keeping its comments and layout."""
    from pipewarden.lint.exceptions import add_exception
    from pipewarden.orgs.edit import NewException

    if not pipelines and not teams:
        raise UsageError("exceptions add needs --pipeline NAME or --team NAME to say what it covers")
    if permanent == (expires is not None):
        raise UsageError("exceptions add needs exactly one of --expires DATE or --permanent")
    if not reason.strip() or not approved_by.strip():
        raise UsageError("--reason and --approved-by may not be empty")
    moment = parse_now(now)
    new = NewException(rule, pipelines, teams, reason, approved_by, parse_date(expires, "--expires"), permanent)
    edit = add_exception(org_config, policies, moment, org, new)
    click.echo(f"Added to {edit.file}: {'; '.join(edit.changes)}.")
