"""`pipewarden policy test`: run the Rego unit tests and print one line per failure (or per test)."""

from __future__ import annotations

import sys

import click


@click.group("policy")
def policy() -> None:
    """Work with Rego policies."""


@policy.command("test")
@click.argument("dirs", nargs=-1)
@click.option("-v", "--verbose", is_flag=True, help="List every test, not only failures.")
def policy_test(dirs: tuple[str, ...], verbose: bool) -> None:
    """Run the Rego unit tests (test_* rules) of the built-in and given policy folders."""
    from pipewarden.lint.exit_codes import policy_test_exit_code
    from pipewarden.policy.testing import run_policy_tests

    results = run_policy_tests(list(dirs))
    failed = [r for r in results if not r.passed]
    for result in results:
        if verbose or not result.passed:
            status = "PASS" if result.passed else "FAIL"
            detail = f"  {result.detail}" if result.detail and not result.passed else ""
            click.echo(f"{status} {result.package}.{result.name} ({result.file}){detail}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(policy_test_exit_code(results))
