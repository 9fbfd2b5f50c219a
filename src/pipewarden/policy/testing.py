"""`pipewarden policy test`: run every `test_*` rule of the `*_test.rego` files.

Besides each test's outcome, a run says which folders have no test at all (a rule nobody
tests is a failure, issue 15 item 7), and explains a failing test: the first statement of its
body that does not hold, and for a comparison the values of both sides (`actual` and `expected`
for `==`). The engine only says a failing test is undefined, so the explanation comes from
probes: the test's body is parsed (regoast.py), and rules made of its first statements, in the
test's own package, are evaluated on a copy of the engine until one is undefined.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipewarden.errors import ConfigError, PipewardenError
from pipewarden.policy.catalog import builtin_policies_dir, load_catalog, read_rego
from pipewarden.policy.engine import UNDEFINED, EvaluationError, PolicyTestEngine, policy_test_engine
from pipewarden.policy.regoast import node, parse_module, var_name

_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.MULTILINE)
_IMPORT = re.compile(r"^import\s.*$", re.MULTILINE)
# Comparisons whose two sides are worth showing, and how they read.
_COMPARISONS = {"Eq": "==", "Ne": "!=", "Lt": "<", "Le": "<=", "Gt": ">", "Ge": ">="}
# Explaining a failure costs a few evaluations; a run where everything fails explains the first ones.
_MAX_EXPLAINED = 50
_MAX_VALUE = 600  # characters of a value shown


@dataclass(frozen=True)
class TestResult:
    """One test's outcome; or, with `missing`, a folder that holds Rego code but no test (a
    failure too: `file` is then the folder)."""

    package: str
    name: str
    file: str
    passed: bool
    detail: str = ""
    line: int = 0
    errored: bool = False
    explanation: tuple[str, ...] = ()
    folder: str = ""
    builtin: bool = False
    missing: bool = False


@dataclass
class _Folder:
    name: str
    builtin: bool
    code: list[str] = field(default_factory=list)  # rule and library files
    tests: int = 0


def _rego_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found.extend(Path(root) / n for n in sorted(names) if n.endswith(".rego"))
    return found


def run_policy_tests(dirs: list[str], engine_kind: str = "regorus") -> list[TestResult]:
    """Load built-in and given folders into one engine, then evaluate each test rule.

    The given folders' rules are loaded as a catalog first, so that a rule whose METADATA is
    invalid, or that reads a parameter it does not declare, stops the run (ConfigError) as it
    would stop `check`. `engine_kind` is the evaluator (engine.POLICY_TEST_ENGINES): `regorus`,
    the embedded one, or `opa`, OPA's own (a UsageError when it is not installed).
    """
    folders = [builtin_policies_dir()] + [Path(d) for d in dirs]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError("policy folder does not exist or is not a directory", str(folder))
    load_catalog(tuple(dirs))
    engine = policy_test_engine(engine_kind)
    tests: list[tuple[str, str, str, int, _Folder]] = []
    texts: dict[str, str] = {}
    places: dict[str, _Folder] = {}
    seen: set[Path] = set()
    for index, top in enumerate(folders):
        files = _rego_files(top)
        if index > 0 and not files:
            places.setdefault(str(top), _Folder(str(top), False, [f"{top} (no .rego file)"]))
        for path in files:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            place = places.setdefault(str(path.parent), _Folder(str(path.parent), index == 0))
            engine.add_file(str(path))
            if not path.name.endswith("_test.rego"):
                place.code.append(path.name)
                continue
            text = read_rego(path)
            texts[str(path)] = text
            declared = _PACKAGE.search(text)
            if declared is None:
                continue
            for match in _TEST_RULE.finditer(text):
                if any(t[1] == match.group(1) and t[2] == str(path) for t in tests):
                    continue  # a test with several bodies is one test
                line = text.count("\n", 0, match.start()) + 1
                tests.append((declared.group(1), match.group(1), str(path), line, place))
                place.tests += 1
    results: list[TestResult] = []
    explained = 0
    for package, name, file, line, place in tests:
        try:
            value = engine.value_of(f"data.{package}.{name}")
        except EvaluationError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "the engine gave no reason"
            results.append(TestResult(package, name, file, False, message, line=line, errored=True,
                                      folder=place.name, builtin=place.builtin))
            continue
        if value is True:
            results.append(TestResult(package, name, file, True, line=line, folder=place.name, builtin=place.builtin))
            continue
        detail = "is undefined: its body does not hold" if value is UNDEFINED else f"evaluated to {_show(value)}"
        explanation: tuple[str, ...] = ()
        if value is UNDEFINED and explained < _MAX_EXPLAINED:
            explained += 1
            explanation = _explain(engine, texts[file], file, package, name)
        results.append(TestResult(package, name, file, False, detail, line=line, explanation=explanation,
                                  folder=place.name, builtin=place.builtin))
    for place in places.values():
        if place.code and place.tests == 0:
            results.append(TestResult(
                "", "", place.name, False,
                f"no test for {', '.join(place.code)}: add a *_test.rego file with test_* rules beside it",
                folder=place.name, builtin=place.builtin, missing=True,
            ))
    return results


def _show(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _explain(engine: PolicyTestEngine, text: str, file: str, package: str, name: str) -> tuple[str, ...]:
    """The first statement of the test's body that does not hold, with the values of both sides
    of a comparison; () when the body cannot be read or replayed."""
    module = parse_module(file, text)
    statements = _test_statements(module, name) if module is not None else None
    if not statements:
        return ()
    data = text.encode()

    def source(span: Any, end: Any = None) -> str:
        """The text of a span. The parser's spans of string literals leave out their quotes,
        so a span that starts or ends at a string is widened by that quote."""
        start, stop = int(span["start"]), int((end or span)["end"])
        if start > 0 and data[start - 1 : start] in (b'"', b"`"):
            start -= 1
        if data[stop : stop + 1] in (b'"', b"`"):
            stop += 1
        return data[start:stop].decode(errors="replace")

    try:
        bodies = [source(statement["span"]) for statement in statements]
    except (KeyError, TypeError, ValueError):
        return ()
    header = f"package {package}\n\n" + "\n".join(_IMPORT.findall(text)) + "\n\n"
    probe = engine.copy()
    try:
        probe.add_module(f"{file}#probe", header + "\n".join(
            f"__pw_probe_{k} if {{\n" + "\n".join(bodies[: k + 1]) + "\n}\n" for k in range(len(bodies))
        ))
        failing = None
        for k in range(len(bodies)):
            if probe.value_of(f"data.{package}.__pw_probe_{k}") is not True:
                failing = k
                break
    except (PipewardenError, EvaluationError) as exc:
        return (f"(the test's statements cannot be replayed one by one: {exc})",)
    if failing is None:
        return ()
    statement = statements[failing]
    shown = " ".join(bodies[failing].split())
    line = int(statement["span"]["line"])
    comparison = _comparison(statement)
    if comparison is None:
        return (f"line {line}: {shown}", "  does not hold (false or undefined)")
    op, left, right, expression = comparison
    # The statement's `with` modifiers, as written: what follows the expression.
    written = source(expression["span"])
    with_text = bodies[failing][len(written):] if bodies[failing].startswith(written) else ""
    sides = []
    for side in (left, right):
        values = engine.copy()
        try:
            values.add_module(f"{file}#side", header + "__pw_side := __pw_value if {\n" + "\n".join(bodies[:failing])
                              + f"\n__pw_value := ({source(_span(side))}){with_text}\n}}\n")
            sides.append(values.value_of(f"data.{package}.__pw_side"))
        except (PipewardenError, EvaluationError, KeyError, TypeError) as exc:
            sides.append(f"(cannot be computed: {exc})")
    if op == "Eq":
        labels = ("expected", "actual") if _is_literal(left) and not _is_literal(right) else ("actual", "expected")
    else:
        labels = ("left", "right")
    width = max(len(label) for label in labels) + 1
    return (
        f"line {line}: {shown}",
        *(f"  {label + ':':<{width}} {_show(value) if not isinstance(value, str) or not value.startswith('(cannot') else value}"
          for label, value in zip(labels, sides, strict=True)),
    )


def _test_statements(module: dict[str, Any], name: str) -> list[Any] | None:
    """The statements of the first body of the test rule `name`."""
    for rule in module.get("rules") or []:
        spec = node(rule)
        if spec is None or spec[0] != "Spec":
            continue
        head = node(spec[1].get("head"))
        if head is None or var_name(head[1].get("refr")) != name:
            continue
        bodies = spec[1].get("bodies") or []
        if not bodies or not isinstance(bodies[0], dict):
            return None
        statements = (bodies[0].get("query") or {}).get("stmts")
        return statements if isinstance(statements, list) else None
    return None


def _span(value: Any) -> Any:
    found = node(value)
    if found is None:
        raise KeyError("span")
    return found[1]["span"]


def _comparison(statement: Any) -> tuple[str, Any, Any, dict[str, Any]] | None:
    """(operator, left node, right node, the expression's fields) of a statement that compares."""
    literal = node(statement.get("literal"))
    if literal is None or literal[0] != "Expr":
        return None
    expression = node(literal[1].get("expr"))
    if expression is None or expression[0] != "BoolExpr" or expression[1].get("op") not in _COMPARISONS:
        return None
    return expression[1]["op"], expression[1].get("lhs"), expression[1].get("rhs"), literal[1]


_CONSTANT_KINDS = {"String", "RawString", "Number", "Bool", "Null"}
_COLLECTION_KINDS = {"Array", "Set", "Object"}


def _is_literal(value: Any) -> bool:
    """A value written out in full (numbers, strings, collections of them): the expected side."""
    found = node(value)
    if found is None:
        return False
    kind, fields = found
    if kind in _CONSTANT_KINDS:
        return True
    if kind in ("Array", "Set"):
        return all(_is_literal(item) for item in fields.get("items", []))
    if kind == "Object":
        return all(isinstance(pair, list) and len(pair) == 3 and _is_literal(pair[1]) and _is_literal(pair[2])
                   for pair in fields.get("fields", []))
    return False
