"""The commands of cli.md, each a thin wrapper: parse options, call a typed function, print."""

from __future__ import annotations

import sys

import click

from pipewarden.cli.main import (
    cli,
    now_option,
    org_config_option,
    output_option,
    parse_now,
    policies_option,
    write_output,
)
from pipewarden.errors import UsageError
from pipewarden.lint.formats import check_formats, render_check

CHECK_FORMATS = ["text", "json", "sarif", "github", "markdown", "junit", "gitlab"]


@cli.command()
@click.argument("paths", nargs=-1, type=str)
@org_config_option()
@policies_option
@click.option("--format", "fmt", default="text", metavar="FMT", help="text, json, sarif, github, markdown, junit, gitlab.")
@output_option
@now_option
@click.option("--fail-on", "fail_on", type=click.Choice(["warn", "enforce"]), default="enforce",
              help="Lowest level that fails the check (default: enforce).")
@click.option("--base", "base", metavar="GIT_REF",
              help="Compare with the same files at this git ref: mark findings new or existing, list fixed ones.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Evaluate every file again; do not read or write the cache.")
@click.option("--cache-dir", "cache_dir", metavar="DIR", help="Where the incremental cache lives (default: ~/.cache/pipewarden).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def check(paths: tuple[str, ...], org_config: str | None, policies: tuple[str, ...], fmt: str,
          output: str | None, now: str | None, fail_on: str, base: str | None, no_cache: bool,
          cache_dir: str | None, quiet: bool) -> None:
    """Lint pipeline definitions (files, or directories searched recursively)."""
    from pipewarden.lint.check import build_context, check_paths

    if fmt not in check_formats():
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(check_formats())}")
    moment = parse_now(now)
    context = build_context(org_config, policies, moment)
    from pathlib import Path

    from pipewarden.evaluation.cache import default_cache_dir

    cache = None if no_cache else (Path(cache_dir) if cache_dir else default_cache_dir())
    result = check_paths(paths, context, quiet=quiet, cache_dir=cache)
    fixed = None
    if base is not None:
        from pipewarden.lint.baseline import compare_with_base

        comparison = compare_with_base(result, base)
        result, fixed = comparison.result, comparison.fixed
    write_output(render_check(fmt, result, now=moment, fixed=fixed, fail_on=fail_on), output)
    # Existing findings count as much as new ones: --base informs, it never lowers the bar.
    sys.exit(1 if any(f.blocks(fail_on) for f in result.findings) else 0)


@cli.group()
def rules() -> None:
    """List, show and promote rules."""


@rules.command("list")
@org_config_option()
@click.option("--org", "org", metavar="NAME", help="Show effective levels for this org node.")
@policies_option
@now_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def rules_list(org_config: str | None, org: str | None, policies: tuple[str, ...], now: str | None, fmt: str) -> None:
    """Id, title, default level and (with --org) the effective level of every rule."""
    from pipewarden.lint.rules import rules_table

    write_output(rules_table(org_config, org, policies, parse_now(now), fmt), None)


@rules.command("show")
@click.argument("rule_id")
@policies_option
def rules_show(rule_id: str, policies: tuple[str, ...]) -> None:
    """The rule's full documentation and parameters."""
    from pipewarden.policy.catalog import load_catalog
    from pipewarden.policy.docs import rule_page

    catalog = load_catalog(tuple(policies))
    rule = catalog.get(rule_id)
    if rule is None:
        raise UsageError(f"unknown rule {rule_id!r}; `pipewarden rules list` shows the ids")
    write_output(rule_page(rule), None)


@cli.group()
def policy() -> None:
    """Work with Rego policies."""


@policy.command("test")
@click.argument("dirs", nargs=-1)
@click.option("-v", "--verbose", is_flag=True, help="List every test, not only failures.")
def policy_test(dirs: tuple[str, ...], verbose: bool) -> None:
    """Run the Rego unit tests (test_* rules) of the built-in and given policy folders."""
    from pipewarden.policy.testing import run_policy_tests

    results = run_policy_tests(list(dirs))
    failed = [r for r in results if not r.passed]
    for result in results:
        if verbose or not result.passed:
            status = "PASS" if result.passed else "FAIL"
            detail = f"  {result.detail}" if result.detail and not result.passed else ""
            click.echo(f"{status} {result.package}.{result.name} ({result.file}){detail}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


@cli.group()
def config() -> None:
    """Work with org-config trees."""


@config.command("validate")
@click.argument("directory")
@policies_option
@now_option
def config_validate(directory: str, policies: tuple[str, ...], now: str | None) -> None:
    """Check an org-config tree on its own (exit 2 with file and line on the first error)."""
    from pipewarden.lint.check import build_context

    context = build_context(directory, policies, parse_now(now))
    assert context.tree is not None
    tree = context.tree
    exceptions = sum(len(n.exceptions) for n in tree.nodes.values())
    click.echo(
        f"{directory}: valid org tree: root {tree.root!r}, {len(tree.nodes)} node(s), "
        f"{len(tree.team_nodes)} team(s), {exceptions} exception(s)"
    )
