"""`pipewarden check`: parse the options, check the fleet (with `--base`, compare), render, exit."""

from __future__ import annotations

import sys

import click

from pipewarden.cli.options import (
    cache_dir_option,
    format_option,
    no_cache_option,
    now_option,
    org_config_option,
    output_option,
    parse_docs_url,
    parse_now,
    policies_option,
    quiet_option,
    write_output,
)
from pipewarden.errors import UsageError
from pipewarden.lint.formats.registry import check_formats, render_check


@click.command("check")
@click.argument("paths", nargs=-1, type=str)
@org_config_option()
@policies_option
@format_option("text", "text, json, sarif, github, markdown, junit, gitlab.")
@output_option
@now_option
@click.option("--fail-on", "fail_on", type=click.Choice(["warn", "enforce"]), default="enforce",
              help="Lowest level that fails the check (default: enforce).")
@click.option("--base", "base", metavar="GIT_REF",
              help="Compare with the same files at this git ref: mark findings new or existing, list fixed ones.")
@click.option("--docs-url", "docs_url", metavar="URL",
              help="Base URL of the rule docs pages that SARIF and markdown link ({rule} in it is replaced by the "
                   "rule's id, else <URL>/<id>.md); default: pipewarden's repository.")
@no_cache_option("Evaluate every file again; do not read or write the cache.")
@cache_dir_option("Where the incremental cache lives (default: ~/.cache/pipewarden).")
@quiet_option
def check(paths: tuple[str, ...], org_config: str | None, policies: tuple[str, ...], fmt: str,
          output: str | None, now: str | None, fail_on: str, base: str | None, no_cache: bool,
          cache_dir: str | None, quiet: bool, docs_url: str | None) -> None:
    """Lint pipeline definitions (files, or directories searched recursively)."""
    from pathlib import Path

    from pipewarden.cli.progress import progress_bar
    from pipewarden.evaluation.context import build_context
    from pipewarden.lint.check import check_paths
    from pipewarden.lint.exit_codes import check_exit_code

    if fmt not in check_formats():
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(check_formats())}")
    moment = parse_now(now)
    if docs_url is not None:
        docs_url = parse_docs_url(docs_url)
    context = build_context(org_config, policies, moment)
    cache = None
    if not no_cache:
        # Imported only here: load.gitrepo costs a single-file `--no-cache` check about 1 ms.
        from pipewarden.load.gitrepo import default_cache_dir

        cache = Path(cache_dir or default_cache_dir())
    result = check_paths(paths, context, cache_dir=cache, progress=lambda total: progress_bar(total, quiet))
    for note in result.notes:
        click.echo(f"pipewarden: {note}", err=True)
    fixed = None
    if base is not None:
        from pipewarden.lint.baseline import compare_with_base

        comparison = compare_with_base(result, base)
        result, fixed = comparison.result, comparison.fixed
    if fmt == "sarif":
        from pipewarden.lint.formats.check_sarif import limit_note

        sarif_note = limit_note(len(result.findings))
        if sarif_note:
            click.echo(f"pipewarden: {sarif_note}", err=True)
    write_output(render_check(fmt, result, now=moment, fixed=fixed, fail_on=fail_on, docs_url=docs_url), output)
    sys.exit(check_exit_code(result.findings, fail_on))
