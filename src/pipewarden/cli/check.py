"""`pipewarden check`: parse the options, check the fleet (with `--base`, compare), render, exit."""

from __future__ import annotations

import sys

import click

from pipewarden.cli.options import (
    cache_dir_option,
    format_option,
    no_cache_option,
    now_option,
    opa_options,
    org_config_option,
    output_option,
    parse_docs_url,
    parse_now,
    policies_option,
    quiet_option,
    use_opa,
    write_output,
)
from pipewarden.cli.project import exclude_globs, exclude_option, option_source, project_config
from pipewarden.errors import UsageError
from pipewarden.lint.formats.registry import check_formats, render_check


@click.command("check")
@click.argument("paths", nargs=-1, type=str)
@org_config_option()
@policies_option
@format_option("text", "text, json, sarif, github, markdown, junit, gitlab.")
@output_option
@now_option
@click.option("--fail-on", "fail_on", type=click.Choice(["enforce", "warn", "new"]), default="enforce",
              help="What fails the check: enforce findings (default), warn (warnings too), or new (with --base: "
                   "only enforce findings the change introduced).")
@exclude_option
@click.option("--as-discovered", "as_discovered", is_flag=True,
              help="Judge the files named like discovered ones: skip other tools' files, apply --exclude "
                   "(for file lists a tool picks, such as pre-commit's).")
@click.option("--base", "base", metavar="GIT_REF",
              help="Compare with the same files at this git ref: mark findings new or existing, list fixed ones.")
@click.option("--docs-url", "docs_url", metavar="URL",
              help="Base URL of the rule docs pages that SARIF and markdown link ({rule} in it is replaced by the "
                   "rule's id, else <URL>/<id>.md); default: pipewarden's repository.")
@no_cache_option("Evaluate every file again; do not read or write the cache.")
@cache_dir_option("Where the incremental cache lives (default: ~/.cache/pipewarden).")
@quiet_option
@opa_options
@click.pass_context
def check(ctx: click.Context, paths: tuple[str, ...], org_config: str | None, policies: tuple[str, ...], fmt: str,
          output: str | None, now: str | None, fail_on: str, exclude: tuple[str, ...], as_discovered: bool,
          base: str | None, no_cache: bool, cache_dir: str | None, quiet: bool, docs_url: str | None,
          opa_url: str | None, opa_token: str | None, opa_no_upload: bool) -> None:
    """Lint pipeline definitions (files, or directories searched recursively)."""
    from pathlib import Path

    from pipewarden.cli.progress import progress_bar
    from pipewarden.evaluation.context import build_context
    from pipewarden.lint.check import check_fail_on, run_check
    from pipewarden.lint.exit_codes import check_exit_code

    if fmt not in check_formats():
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(check_formats())}")
    check_fail_on(fail_on, base, option_source(ctx, "fail_on", "--fail-on"))
    moment = parse_now(now)
    if docs_url is not None:
        docs_url = parse_docs_url(docs_url)
    # The OPA server is chosen (and asked whether it answers) before the rules are loaded; its
    # results are not cached: a run with --opa-url asks that server about every file.
    remote = use_opa(opa_url, opa_token, opa_no_upload)
    context = build_context(org_config, policies, moment)
    cache = None
    if not no_cache and not remote:
        # Imported only here: load.gitrepo costs a single-file `--no-cache` check about 1 ms.
        from pipewarden.load.gitrepo import default_cache_dir

        cache = Path(cache_dir or default_cache_dir())
    config = project_config(ctx)
    run = run_check(paths, context, base=base, cache_dir=cache, progress=lambda total: progress_bar(total, quiet),
                    exclude=exclude_globs(exclude), as_discovered=as_discovered,
                    config=config.file if config is not None else None)
    result, fixed = run.result, run.fixed
    for note in result.notes:
        click.echo(f"pipewarden: {note}", err=True)
    if fmt == "sarif":
        from pipewarden.lint.formats.check_sarif import limit_note

        sarif_note = limit_note(len(result.findings))
        if sarif_note:
            click.echo(f"pipewarden: {sarif_note}", err=True)
    write_output(render_check(fmt, result, now=moment, fixed=fixed, fail_on=fail_on, docs_url=docs_url), output)
    sys.exit(check_exit_code(result.findings, fail_on))
