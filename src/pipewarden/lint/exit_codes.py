"""The exit codes of cli.md, and the one place each command's code is computed.

The fronts only pass the code on (`sys.exit`); nothing else decides what a run's outcome means.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # both only typed here: the CLI imports this module before any command runs
    from pipewarden.model.finding import Finding
    from pipewarden.policy.testing import TestResult

OK = 0
# `check`: a finding fails the check; `policy test`: a test failed.
FAILED = 1
# A usage or configuration error, always with a one-line message on stderr.
USAGE = 2


def check_exit_code(findings: Iterable[Finding], fail_on: str) -> int:
    """1 when a finding blocks at `fail_on` (not excepted), else 0.

    With `--base`, existing findings count as much as new ones (--base informs, it does not lower
    the bar by itself); only `--fail-on new` asks for new `enforce` findings alone to fail.
    """
    return FAILED if any(finding.blocks(fail_on) for finding in findings) else OK


def policy_test_exit_code(results: Iterable[TestResult]) -> int:
    """1 when a Rego unit test failed, else 0."""
    return FAILED if any(not result.passed for result in results) else OK
