"""Commands for policy owners: `rules promote`, `exceptions list`, `exceptions add`.

Thin wrappers over promote.py and exception_admin.py; registered by importing this module.
"""

from __future__ import annotations

import datetime as dt

import click

from pipewarden.cli.commands import rules
from pipewarden.cli.main import cli, now_option, parse_now, policies_option, write_output
from pipewarden.errors import UsageError


def parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date; write YYYY-MM-DD") from None


@rules.command("promote")
@click.argument("rule_id")
@click.argument("paths", nargs=-1, type=str)
@click.option("--org", "org", required=True, metavar="NAME", help="The org node whose file is edited.")
@click.option("--org-config", "org_config", required=True, metavar="DIR", help="Org-config directory.")
@click.option("--to", "to", type=click.Choice(["off", "warn", "enforce"]), default=None,
              help="The new level (default enforce); removes a schedule of that node.")
@click.option("--from", "from_date", metavar="DATE",
              help="Schedule enforcement from DATE instead: writes level: warn and enforce_from: DATE.")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the impact and write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text (default) or json (for automation).")
@click.option("--inventory", "inventory", metavar="FILE", help="Inventory of the fleet (instead of PATHs).")
@click.option("--cache-dir", "cache_dir", metavar="DIR",
              help="Where git repositories of the inventory are cloned (default: the user cache dir).")
@policies_option
@now_option
def rules_promote(rule_id: str, paths: tuple[str, ...], org: str, org_config: str, to: str | None,
                  from_date: str | None, dry_run: bool, fmt: str, inventory: str | None, cache_dir: str | None,
                  policies: tuple[str, ...], now: str | None) -> None:
    """Set a rule's level in an org node (or schedule enforcement), after showing the impact.

    pipewarden rules promote ID --org NAME --org-config DIR [--to LEVEL | --from DATE] [--dry-run]
    (--inventory FILE | PATH ...)
    """
    from pipewarden.lint.promote import (
        PromoteOptions,
        apply_promotion,
        outcome_line,
        prepare_promotion,
        render_json,
        render_text,
    )

    options = PromoteOptions(rule_id, org, org_config, to, parse_date(from_date, "--from"), dry_run, paths,
                             inventory, policies, cache_dir)
    promotion = prepare_promotion(options, parse_now(now))
    for note in promotion.notes:
        click.echo(f"pipewarden: {note}", err=True)
    if fmt == "json":
        apply_promotion(promotion)
        write_output(render_json(promotion), None)
        return
    # The impact is on screen before the file changes.
    write_output(render_text(promotion), None)
    apply_promotion(promotion)
    write_output(outcome_line(promotion), None)


@cli.group("exceptions")
def exceptions_group() -> None:
    """List and add exceptions in an org tree."""


@exceptions_group.command("list")
@click.option("--org-config", "org_config", required=True, metavar="DIR", help="Org-config directory.")
@click.option("--org", "org", metavar="NAME", help="Only exceptions granted in this node's subtree.")
@click.option("--expiring", "expiring", type=click.IntRange(min=0), metavar="DAYS",
              help="Only active exceptions that end within DAYS days.")
@click.option("--expired", "expired", is_flag=True, help="Only expired exceptions (with --expiring: either).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              help="table (default) or json.")
@policies_option
@now_option
def exceptions_list(org_config: str, org: str | None, expiring: int | None, expired: bool, fmt: str,
                    policies: tuple[str, ...], now: str | None) -> None:
    """The exceptions of an org tree, soonest to end first."""
    from pipewarden.lint.check import build_context
    from pipewarden.lint.exceptions import list_exceptions, render_exceptions
    from pipewarden.orgs.edit import require_node

    moment = parse_now(now)
    context = build_context(org_config, policies, moment)
    assert context.tree is not None
    if org is not None:
        require_node(context.tree, org, org_config)
    items = list_exceptions(context.tree, org, context.today, expiring, expired)
    write_output(render_exceptions(items, fmt, moment), None)


@exceptions_group.command("add")
@click.option("--org-config", "org_config", required=True, metavar="DIR", help="Org-config directory.")
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
    from pipewarden.lint.check import build_context
    from pipewarden.lint.exceptions import plan_new_exception
    from pipewarden.orgs.edit import NewException, write_edit

    if not pipelines and not teams:
        raise UsageError("exceptions add needs --pipeline NAME or --team NAME to say what it covers")
    if permanent == (expires is not None):
        raise UsageError("exceptions add needs exactly one of --expires DATE or --permanent")
    if not reason.strip() or not approved_by.strip():
        raise UsageError("--reason and --approved-by may not be empty")
    context = build_context(org_config, policies, parse_now(now))
    assert context.tree is not None
    new = NewException(rule, pipelines, teams, reason, approved_by, parse_date(expires, "--expires"), permanent)
    edit = plan_new_exception(context.tree, context.catalog, org_config, org, new, context.today)
    write_edit(edit, org_config, context.catalog, context.today)
    click.echo(f"Added to {edit.file}: {'; '.join(edit.changes)}.")
