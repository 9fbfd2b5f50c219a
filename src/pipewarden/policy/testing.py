"""`pipewarden policy test`: run every `test_*` rule of the `*_test.rego` files."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipewarden.errors import ConfigError
from pipewarden.policy.catalog import builtin_policies_dir, read_rego
from pipewarden.policy.engine import EvaluationError, policy_test_engine

_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.MULTILINE)


@dataclass(frozen=True)
class TestResult:
    package: str
    name: str
    file: str
    passed: bool
    detail: str = ""


def _rego_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found.extend(Path(root) / n for n in sorted(names) if n.endswith(".rego"))
    return found


def run_policy_tests(dirs: list[str]) -> list[TestResult]:
    """Load built-in and given folders into one engine, then evaluate each test rule."""
    folders = [builtin_policies_dir()] + [Path(d) for d in dirs]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError("policy folder does not exist or is not a directory", str(folder))
    engine = policy_test_engine()
    tests: list[tuple[str, str, str]] = []
    seen: set[Path] = set()
    for folder in folders:
        for path in _rego_files(folder):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            engine.add_file(str(path))
            if path.name.endswith("_test.rego"):
                text = read_rego(path)
                declared = _PACKAGE.search(text)
                if declared is None:
                    continue
                for name in dict.fromkeys(_TEST_RULE.findall(text)):
                    tests.append((declared.group(1), name, str(path)))
    results = []
    for package, name, file in tests:
        try:
            value = engine.value_of(f"data.{package}.{name}")
            passed = value is True
            detail = "" if passed else f"evaluated to {json.dumps(value)}"
        except EvaluationError as exc:
            passed, detail = False, str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
        results.append(TestResult(package, name, file, passed, detail))
    return results
