"""`pipewarden rules`: list, show and promote rules (the whole group in this one module)."""

from __future__ import annotations

import sys

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
from pipewarden.cli.project import exclude_globs, exclude_option
from pipewarden.errors import UsageError


@click.group("rules")
def rules() -> None:
    """List, show and promote rules."""


@rules.command("list")
@org_config_option()
@click.option("--org", "org", metavar="NAME", help="Show effective levels for this org node.")
@policies_option
@now_option
@format_choice_option(["table", "json"])
def rules_list(org_config: str | None, org: str | None, policies: tuple[str, ...], now: str | None, fmt: str) -> None:
    """Id, title, default level and (with --org) the effective level of every rule."""
    from pipewarden.lint.formats import rules_list
    from pipewarden.lint.rules import rule_listing

    write_output(rules_list.render(rule_listing(org_config, org, policies, parse_now(now)), fmt=fmt), None)


@rules.command("show")
@click.argument("rule_id")
@policies_option
def rules_show(rule_id: str, policies: tuple[str, ...]) -> None:
    """The rule's full documentation and parameters."""
    from pipewarden.lint.rules import find_rule
    from pipewarden.policy.docs import rule_page

    write_output(rule_page(find_rule(rule_id, policies)), None)


@rules.command("promote")
@click.argument("rule_id")
@click.argument("paths", nargs=-1, type=str)
@click.option("--org", "org", required=True, metavar="NAME", help="The org node whose file is edited.")
@org_config_option(required=True, help="Org-config directory.")
@click.option("--to", "to", type=click.Choice(["off", "warn", "enforce"]), default=None,
              help="The new level (default enforce); removes a schedule of that node.")
@click.option("--from", "from_date", metavar="DATE",
              help="Schedule enforcement from DATE instead: writes level: warn and enforce_from: DATE.")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the impact and write nothing.")
@click.option("-y", "--yes", "yes", is_flag=True,
              help="Write without asking (needed when stdin is not a terminal, as in CI).")
@format_choice_option(["text", "json"], "text (default) or json (for automation).")
@click.option("--inventory", "inventory", metavar="FILE", help="Inventory of the fleet (instead of PATHs).")
@cache_dir_option("Where git repositories of the inventory are cloned (default: the user cache dir).")
@exclude_option
@policies_option
@now_option
def rules_promote(rule_id: str, paths: tuple[str, ...], org: str, org_config: str, to: str | None,
                  from_date: str | None, dry_run: bool, yes: bool, fmt: str, inventory: str | None,
                  cache_dir: str | None, exclude: tuple[str, ...], policies: tuple[str, ...], now: str | None) -> None:
    """Set a rule's level in an org node (or schedule enforcement), after showing the impact.

    pipewarden rules promote ID --org NAME --org-config DIR [--to LEVEL | --from DATE] [--dry-run]
    [--yes] (--inventory FILE | PATH ...)

    Without --dry-run it asks before writing; --yes writes without asking. When stdin is not a
    terminal (CI, a script) nobody can answer: without --yes or --dry-run it refuses (exit 2,
    nothing written) when there is something to write.
    """
    from pipewarden.lint.formats import promote_preview
    from pipewarden.lint.promote import PromoteOptions, apply_promotion, prepare_promotion

    options = PromoteOptions(rule_id, org, org_config, to, parse_date(from_date, "--from"), dry_run, paths,
                             inventory, policies, cache_dir, exclude_globs(exclude))
    promotion = prepare_promotion(options, parse_now(now))
    for note in promotion.notes:
        click.echo(f"pipewarden: {note}", err=True)
    ask = not dry_run and not yes and promotion.edit.changed
    if ask and (sys.stdin is None or not sys.stdin.isatty()):
        raise UsageError(f"rules promote writes {promotion.edit.file} only when confirmed, and stdin is not a "
                         "terminal: add --yes to write without asking (CI), or --dry-run to print the impact only")
    if fmt == "json":
        # The document says whether the file was written, so it comes after the question.
        declined = ask and not _confirm(
            promotion.edit.file, promote_preview.totals_line(promotion))
        if not declined:
            apply_promotion(promotion)
        write_output(promote_preview.render_json(promotion), None)
        return
    # The impact is on screen before the file changes.
    write_output(promote_preview.render_text(promotion), None)
    if ask and not _confirm(promotion.edit.file, None):
        click.echo(f"Nothing written to {promotion.edit.file}.")
        return
    apply_promotion(promotion)
    write_output(promote_preview.outcome_line(promotion), None)


def _confirm(file: str, summary: str | None) -> bool:
    """Ask on the terminal (the question on stderr, so stdout stays the report); no by default."""
    if summary:
        click.echo(summary, err=True)
    return click.confirm(f"Write {file}?", default=False, err=True)
