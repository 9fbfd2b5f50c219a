"""`policy test`: a block per failed test (per test with --verbose), a folder without tests
named as such, the counts per folder, then `N passed, N failed`.

A failing test shows the statement that did not hold and, for a comparison, both values
(`actual`/`expected`); an erroring test shows the engine's error with its file and line.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipewarden.policy.testing import TestResult

BUILTIN = "built-in rules"


def _counts(passed: int, failed: int, errors: int) -> str:
    text = f"{passed} passed, {failed} failed"
    return text + (f" ({errors} with an error)" if errors else "")


def render(results: Sequence[TestResult], *, verbose: bool) -> str:
    lines: list[str] = []
    tests = [r for r in results if not r.missing]
    for result in tests:
        if result.passed and not verbose:
            continue
        status = "PASS" if result.passed else "ERROR" if result.errored else "FAIL"
        where = f"{result.file}:{result.line}" if result.line else result.file
        lines.append(f"{status} {result.package}.{result.name} ({where})")
        if not result.passed:
            lines.append(f"  {result.detail}")
            lines.extend(f"  {line}" for line in result.explanation)
    missing = [r for r in results if r.missing]
    for result in missing:
        lines.append(f"NO TESTS {result.folder}: {result.detail}")
    # Counts per folder: the given folders one by one, the built-in rules as one line.
    folders: dict[str, list[int]] = {}
    for result in results:
        name = BUILTIN if result.builtin else result.folder
        passed, failed, errors = folders.setdefault(name, [0, 0, 0])
        if not result.missing:
            folders[name] = [passed + result.passed, failed + (not result.passed), errors + result.errored]
    if folders:
        lines.append("")
        width = max(len(name) for name in folders) + 2
        missing_folders = {BUILTIN if r.builtin else r.folder for r in missing}
        for name, (passed, failed, errors) in folders.items():
            counts = "no tests" if name in missing_folders and passed + failed == 0 else _counts(passed, failed, errors)
            lines.append(f"{name:<{width}}{counts}")
    if missing:
        lines.append(f"{len(missing)} folder{'s' if len(missing) > 1 else ''} without tests")
    failed = sum(1 for result in tests if not result.passed)
    lines.append(f"{len(tests) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"
