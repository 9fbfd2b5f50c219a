"""The embedded Rego engine (regorus): loads the catalog once, evaluates documents in one query.

Inputs and results cross the bridge as JSON text: the dict bridge turns booleans into
integers and cannot return sets of objects.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

import regorus

from pipewarden.errors import LoadError, PolicyError
from pipewarden.load.yamlsafe import read_text_file
from pipewarden.policy.catalog import Catalog, Rule

# One query per document for all its enabled rules: an object of each rule package's `deny`
# set, keyed by the full package name. The object names each package's `deny` explicitly (see
# `_aggregator`): asking for `data.pipewarden.rules[name]` with `name` unbound makes the
# engine evaluate every rule of every package, helpers included, and off rules too.
_AGGREGATOR_PACKAGE = "pipewarden.main"
_UNDEFINED = "<undefined>"
_LINE = re.compile(r":(\d+):")


def new_engine() -> Any:
    """A fresh embedded engine (one per process and thread)."""
    return regorus.Engine()


def _add_policy(engine: Any, path: str) -> None:
    try:
        text = read_text_file(path)
    except LoadError as exc:
        raise PolicyError(f"cannot read the policy file: {exc.message}", path, exc.line or 1) from None
    try:
        engine.add_policy(path, text)
    except RuntimeError as exc:
        raise PolicyError(*_compile_error(str(exc), path)) from None


def _compile_error(text: str, path: str) -> tuple[str, str, int]:
    """regorus reports `--> file:LINE:COL`, a source excerpt, then `error: WHAT`: keep WHAT and LINE."""
    lines = [line.strip() for line in text.strip().splitlines()]
    where = next((_LINE.search(line) for line in lines if line.startswith("-->")), None)
    what = next((line[len("error:"):].strip() for line in lines if line.startswith("error:")), None)
    detail = what or " ".join(lines[:4])
    return f"the policy does not compile: {detail}", path, int(where.group(1)) if where else 1


def deny_ref(package: str) -> str:
    """`data["pipewarden"]["rules"]["x"]["deny"]`: brackets, so that a package part that is a
    Rego keyword (`in`, `if`, `every`) still makes a valid reference."""
    return "data" + "".join(f'["{part}"]' for part in package.split(".")) + '["deny"]'


def _aggregator(package: str, rules: list[Rule]) -> str:
    """A module whose `violations` object holds the `deny` set of each rule given, keyed by
    package.

    A `deny` written as a complete rule (`deny := ... if`) is undefined when its body fails, and
    one undefined entry makes the whole object undefined: such rules go through a helper with a
    default (about 3 µs per document each, so `deny contains` rules, never undefined, do not).
    """
    helpers: list[str] = []
    entries: list[str] = []
    for index, rule in enumerate(rules):
        ref = deny_ref(str(rule.package))
        if not rule.deny_always_defined:
            helpers += [f"default _deny{index} := []", "", f"_deny{index} := {ref}", ""]
            ref = f"_deny{index}"
        entries.append(f'\t"{rule.package}": {ref},')
    return "\n".join([f"package {package}", "", "import rego.v1", "", *helpers, "violations := {", *entries, "}", ""])


class RuleEngine:
    """Evaluates the catalog's Rego rules. Not thread-safe: one per process."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._packages = {str(r.package): r for r in catalog.document_rules()}
        self._engine = new_engine()
        for path in catalog.rego_files():
            _add_policy(self._engine, path)
        # One aggregator per set of enabled rules (an org tree has a few), made on first use;
        # the one for all rules is made now, so that a problem shows when the catalog loads.
        self._queries: dict[frozenset[str] | None, str] = {}
        self._query(None)

    def _query(self, rules: frozenset[str] | None) -> str:
        if rules not in self._queries:
            wanted = [r for p, r in sorted(self._packages.items()) if rules is None or r.id in rules]
            package = f"{_AGGREGATOR_PACKAGE}.q{len(self._queries)}"
            try:
                self._engine.add_policy(f"pipewarden/{package}.rego", _aggregator(package, wanted))
            except RuntimeError as exc:
                raise PolicyError(f"the rules cannot be combined into one query: {str(exc).strip()}") from None
            self._queries[rules] = f"data.{package}.violations"
        return self._queries[rules]

    def evaluate(
        self, document: dict[str, Any], params: dict[str, dict[str, Any]], rules: frozenset[str] | None = None
    ) -> list[tuple[str, str, str]]:
        """(rule id, path, message) of every violation of the document rules in `rules` (all
        document rules when None)."""
        return self.evaluate_json(json.dumps(document), json.dumps(params), rules)

    def evaluate_json(
        self, document_json: str, params_json: str, rules: frozenset[str] | None = None
    ) -> list[tuple[str, str, str]]:
        """`evaluate` for a document and params already serialised (each is made once)."""
        query = self._query(rules)
        self._engine.set_input_json('{"pipeline": ' + document_json + ', "params": ' + params_json + "}")
        raw = self._eval(query)
        if raw == _UNDEFINED:
            raw = self._rule_by_rule(rules)
        found = []
        for package, violations in (raw or {}).items():
            rule = self._packages.get(package)
            if rule is None:
                continue
            if not isinstance(violations, list) or not all(isinstance(v, dict) for v in violations):
                raise PolicyError(
                    f"rule {rule.id}: `deny` must be a set of objects with `msg` and `path`, "
                    f"as in `deny contains {{\"msg\": ..., \"path\": ...}} if {{ ... }}`", rule.source, rule.deny_line,
                )
            for violation in violations:
                found.append((rule.id, str(violation.get("path", "")), str(violation.get("msg", ""))))
        return found

    def _eval(self, query: str) -> Any:
        try:
            return json.loads(self._engine.eval_rule_as_json(query))
        except RuntimeError as exc:
            raise PolicyError(f"a rule failed to evaluate: {str(exc).strip()}") from None

    def _rule_by_rule(self, rules: frozenset[str] | None) -> dict[str, Any]:
        """Each enabled rule's `deny` on its own (the input is already set): a rule whose
        `deny` is undefined for this document reports nothing, the others report as usual."""
        found = {}
        for package, rule in self._packages.items():
            if rules is None or rule.id in rules:
                try:
                    found[package] = json.loads(self._engine.eval_query_as_json(deny_ref(package)))
                except RuntimeError as exc:
                    raise PolicyError(f"rule {rule.id} failed to evaluate: {str(exc).strip()}") from None
        return {package: _query_values(result) for package, result in found.items()}

    def evaluate_fleet(self, package: str, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The `deny` set of a fleet rule over a summary of every valid pipeline."""
        self._engine.set_input_json(json.dumps({"pipelines": pipelines}))
        try:
            raw = json.loads(self._engine.eval_rule_as_json(f"data.{package}.deny"))
        except RuntimeError as exc:
            if "not found" in str(exc) or "undefined" in str(exc).lower():
                return []
            raise PolicyError(f"fleet rule {package} failed to evaluate: {str(exc).strip()}") from None
        return [v for v in (raw or []) if isinstance(v, dict)]


def _query_values(answer: Any) -> Any:
    """The value of a one-expression query's answer (`{}` or no result when undefined)."""
    results = answer.get("result") if isinstance(answer, dict) else None
    if not results:
        return []
    expressions = results[0].get("expressions") or [{}]
    return expressions[0].get("value", [])
