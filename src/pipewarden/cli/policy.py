"""`pipewarden policy test`: run the Rego unit tests, print the failures (or every test) and the counts."""

from __future__ import annotations

import sys

import click

from pipewarden.cli.options import write_output


@click.group("policy")
def policy() -> None:
    """Work with Rego policies."""


@policy.command("test")
@click.argument("dirs", nargs=-1)
@click.option("-v", "--verbose", is_flag=True, help="List every test, not only failures.")
@click.option("--engine", "engine", type=click.Choice(["regorus", "opa"]), default="regorus", show_default=True,
              help="The evaluator: the embedded one, or OPA's own (needs opa-golib-python-bindings; docs/opa.md), "
                   "to check that the rules mean the same on an organisation's OPA.")
def policy_test(dirs: tuple[str, ...], verbose: bool, engine: str) -> None:
    """Run the Rego unit tests (test_* rules) of the built-in and given policy folders."""
    from pipewarden.lint.exit_codes import policy_test_exit_code
    from pipewarden.lint.formats import policy_test as policy_test_format
    from pipewarden.policy.testing import run_policy_tests

    results = run_policy_tests(list(dirs), engine)
    write_output(policy_test_format.render(results, verbose=verbose), None)
    sys.exit(policy_test_exit_code(results))
