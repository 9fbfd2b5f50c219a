"""`pipewarden report` (cli.md) and `pipewarden report history`: thin wrappers over lint/report/.

`report` takes PATHs and also has a subcommand, which click groups do not mix well: a group's
variadic argument would swallow the subcommand's name. `ReportGroup` therefore looks at the
first word: a subcommand name runs the subcommand, anything else is parsed as `report`'s own
options and PATHs.
"""

from __future__ import annotations

import click

from pipewarden.cli.options import (
    cache_dir_option,
    format_choice_option,
    format_option,
    no_cache_option,
    now_option,
    opa_options,
    org_config_option,
    output_option,
    parse_now,
    policies_option,
    quiet_option,
    use_opa,
    write_output,
)
from pipewarden.cli.project import exclude_globs, exclude_option
from pipewarden.errors import UsageError


class ReportGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            # The subcommand parses its own options; the group's get their defaults.
            click.Command.parse_args(self, ctx, [])
            ctx._protected_args, ctx.args = args[:1], args[1:]
            return ctx.args
        # Options may follow PATHs, as with `check` (click groups stop at the first word otherwise).
        ctx.allow_interspersed_args = True
        return click.Command.parse_args(self, ctx, args)


@click.group("report", cls=ReportGroup, invoke_without_command=True)
@click.argument("paths", nargs=-1, type=str)
@org_config_option(help="Org-config directory (required).")
@click.option("--inventory", "inventory", metavar="FILE", help="Inventory of the fleet's repositories.")
@format_option("table", "table (default), json, csv, markdown, html.")
@click.option("--by", "by", default="team", metavar="LEVEL", help="team (default) or org (subtree totals).")
@click.option("--org", "org", metavar="NAME", help="Only this org node's subtree.")
@click.option("--history", "history", metavar="DB",
              help="Record this report in a history store (a SQLite file) and show the change since the last one.")
@cache_dir_option("pipewarden's cache: clones of the inventory's git repositories and, as for check, "
                  "results of unchanged files (default: ~/.cache/pipewarden).")
@no_cache_option("Evaluate every file again (git repositories are still cloned into the cache).")
@exclude_option
@quiet_option
@policies_option
@now_option
@output_option
@opa_options
@click.pass_context
def report(ctx: click.Context, paths: tuple[str, ...], org_config: str | None, inventory: str | None, fmt: str,
           by: str, org: str | None, history: str | None, cache_dir: str | None, no_cache: bool,
           exclude: tuple[str, ...], quiet: bool, policies: tuple[str, ...], now: str | None,
           output: str | None, opa_url: str | None, opa_token: str | None, opa_no_upload: bool) -> None:
    """Org compliance for leaders: team (or org) rows, failing rules, automation levels, exceptions.

    pipewarden report --org-config DIR (--inventory FILE | PATH ...)
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipewarden.cli.progress import progress_bar
    from pipewarden.lint.report.run import ReportOptions, run_report

    if org_config is None:
        raise UsageError("report needs --org-config DIR (the org tree the teams belong to)")
    remote = use_opa(opa_url, opa_token, opa_no_upload)  # results from an OPA server are not cached
    options = ReportOptions(org_config, paths, inventory, fmt, by, org, history, policies, cache_dir,
                            use_cache=not no_cache and not remote, exclude=exclude_globs(exclude))
    run = run_report(options, parse_now(now), progress=lambda total: progress_bar(total, quiet))
    for note in run.notes:
        click.echo(f"pipewarden: {note}", err=True)
    write_output(run.text, output)


@report.command("history")
@click.option("--history", "history", required=True, metavar="DB", help="The history store to list.")
@format_choice_option(["table", "json"])
def report_history(history: str, fmt: str) -> None:
    """List the report runs recorded in a history store."""
    from pipewarden.lint.formats import report_history
    from pipewarden.lint.report.history import history_runs

    write_output(report_history.render(history_runs(history), fmt=fmt), None)
