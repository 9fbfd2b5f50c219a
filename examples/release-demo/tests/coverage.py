"""Build test of type coverage: the unit tests must run at least --min percent of service.py's lines.

Standard library only (the `trace` module), so the demo needs nothing installed:
    python3 tests/coverage.py --min 70
"""

import argparse
import sys
import trace
import types
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = (HERE.parent / "service.py").resolve()


def code_lines(code: types.CodeType) -> set[int]:
    """The lines that hold bytecode, in `code` and every function and class inside it."""
    lines = {line for _start, _end, line in code.co_lines() if line is not None}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            lines |= code_lines(constant)
    return lines


def run_tests() -> bool:
    suite = unittest.defaultTestLoader.discover(str(HERE), top_level_dir=str(HERE))
    return unittest.TextTestRunner(verbosity=0).run(suite).wasSuccessful()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min", type=float, default=70.0)
    args = parser.parse_args()
    sys.path.insert(0, str(TARGET.parent))
    sys.modules.pop("service", None)
    tracer = trace.Trace(count=1, trace=0)
    ok = tracer.runfunc(run_tests)
    ran = {line for (file, line) in tracer.results().counts if Path(file).resolve() == TARGET}
    lines = code_lines(compile(TARGET.read_text(encoding="utf-8"), str(TARGET), "exec"))
    percent = 100.0 * len(ran & lines) / len(lines)
    print(f"coverage of service.py: {percent:.1f}% of {len(lines)} lines (at least {args.min:g}% required)")
    return 0 if ok and percent >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
