"""`policy test`: a line per failed test (per test with --verbose), then the counts."""

from __future__ import annotations

from collections.abc import Sequence

from pipewarden.policy.testing import TestResult


def render(results: Sequence[TestResult], *, verbose: bool) -> str:
    lines = []
    for result in results:
        if verbose or not result.passed:
            status = "PASS" if result.passed else "FAIL"
            detail = f"  {result.detail}" if result.detail and not result.passed else ""
            lines.append(f"{status} {result.package}.{result.name} ({result.file}){detail}\n")
    failed = sum(1 for result in results if not result.passed)
    lines.append(f"{len(results) - failed} passed, {failed} failed\n")
    return "".join(lines)
