"""The embedded Rego engine (regorus) behind the `RuleEngine` protocol (engine.py).

Inputs and results cross the bridge as JSON text: the dict bridge turns booleans into
integers and cannot return sets of objects. An engine is bound to the thread that made it
(regorus's Python class is unsendable: even `clone()` from another thread fails), so nothing
outside this module holds one: callers get theirs from `engine.engine_for`, one per thread.
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
from pipewarden.policy.aggregate import aggregator_module, deny_ref, violations_of
from pipewarden.policy.builtin import POLICY_ERROR
from pipewarden.policy.catalog import Catalog
from pipewarden.policy.engine import UNDEFINED, EvaluationError, RuleFailed, RuleFailure
from pipewarden.policy.rule import Rule

# One query per document for all its enabled rules: an object of each rule package's `deny`
# set, keyed by the full package name. The object names each package's `deny` explicitly (see
# `aggregator_module`): asking for `data.pipewarden.rules[name]` with `name` unbound makes the
# engine evaluate every rule of every package, helpers included, and off rules too.
_AGGREGATOR_PACKAGE = "pipewarden.main"
_UNDEFINED = "<undefined>"
_LINE = re.compile(r":(\d+):")
# `--> FILE:LINE:COLUMN`, how regorus starts an error (and names a second place, for conflicts).
_LOCATION = re.compile(r"^-->\s*(.+):(\d+):(\d+)$")
_MAX_ERROR = 500  # characters of an engine's error kept in a finding's message


def rule_failure(rule: Rule, text: str) -> RuleFailure:
    """The failure of `rule` from the engine's error text.

    regorus writes `--> FILE:LINE:COL`, a source excerpt, then `error: WHAT` (a conflict names
    the other definition after it, with a second `-->`); a backtrace may follow when the
    environment asks for one. The line is the error's when it is in the rule's own file, else
    the line of the rule's `deny` (the place in another file, a library, goes into the error).
    """
    lines = [line.strip() for line in text.split("Stack backtrace:")[0].strip().splitlines()]
    places = [(i, m.group(1), int(m.group(2))) for i, line in enumerate(lines) if (m := _LOCATION.match(line))]
    at = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if at is None:
        what = " ".join(line for line in lines if line) or "the engine gave no reason"
    else:
        what = lines[at][len("error:"):].strip().rstrip(":").strip()
        later = [f"{file}:{line}" for i, file, line in places if i > at]
        if later:
            what += f" ({', '.join(later)})"
    if len(what) > _MAX_ERROR:
        what = what[: _MAX_ERROR - 3] + "..."
    source = rule.source or "the Python core"
    first = next(((file, line) for i, file, line in places if at is None or i < at), None)
    if first is not None and first[0] == source:
        return RuleFailure(rule.id, source, first[1], what)
    if first is not None:
        what += f" at {first[0]}:{first[1]}"
    return RuleFailure(rule.id, source, rule.deny_line, what)


def _add_policy(engine: Any, path: str, text: str | None = None) -> None:
    """Compile one Rego file into `engine`: `text` when the caller has read it already (the
    catalog keeps what its rules were read from), else the file."""
    if text is None:
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


class RegorusEngine:
    """Evaluates the catalog's Rego rules on the embedded engine (a `RuleEngine`). Bound to the
    thread that made it: get one through `engine.engine_for`, never share it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._packages = {str(r.package): r for r in catalog.document_rules()}
        self._engine = regorus.Engine()
        for path in catalog.rego_files():
            _add_policy(self._engine, path, catalog.texts.get(path))
        # One aggregator per set of enabled rules (an org tree has a few), made on first use;
        # the one for all rules is made now, so that a problem shows when the catalog loads.
        self._queries: dict[frozenset[str] | None, str] = {}
        self._query(None)

    def _query(self, rules: frozenset[str] | None) -> str:
        if rules not in self._queries:
            wanted = [r for p, r in sorted(self._packages.items()) if rules is None or r.id in rules]
            package = f"{_AGGREGATOR_PACKAGE}.q{len(self._queries)}"
            try:
                self._engine.add_policy(f"pipewarden/{package}.rego", aggregator_module(package, wanted))
            except RuntimeError as exc:
                raise PolicyError(f"the rules cannot be combined into one query: {str(exc).strip()}") from None
            self._queries[rules] = f"data.{package}.violations"
        return self._queries[rules]

    def evaluate(
        self, document: dict[str, Any], params: dict[str, dict[str, Any]], rules: frozenset[str] | None = None
    ) -> list[tuple[str, str, str]]:
        """(rule id, path, message) of every violation of the document rules in `rules` (all
        document rules when None); a rule that failed while it ran gives a `policy-error`
        triple with the failure's message."""
        return self.evaluate_json(json.dumps(document), json.dumps(params), rules)

    def evaluate_json(
        self, document_json: str, params_json: str, rules: frozenset[str] | None = None
    ) -> list[tuple[str, str, str]]:
        """`evaluate` for a document and params already serialised (each is made once)."""
        found, failures = self.run(document_json, params_json, rules)
        return found + [(POLICY_ERROR.id, "", failure.message()) for failure in failures]

    def run(
        self, document_json: str, params_json: str, rules: frozenset[str] | None = None
    ) -> tuple[list[tuple[str, str, str]], list[RuleFailure]]:
        """The violations (rule id, path, message) of the rules in `rules` (all document rules
        when None), and the rules that failed while they ran on this document.

        All rules are asked in one query. When it fails (one rule's error aborts the whole
        query) or is undefined, each rule is asked on its own: the failing ones are found, and
        the others still report.
        """
        query = self._query(rules)
        self._engine.set_input_json('{"pipeline": ' + document_json + ', "params": ' + params_json + "}")
        failures: list[RuleFailure] = []
        try:
            raw = json.loads(self._engine.eval_rule_as_json(query))
        except RuntimeError:
            raw = _UNDEFINED
        if raw == _UNDEFINED:
            raw, failures = self._rule_by_rule(rules)
        return violations_of(raw or {}, self._packages), failures

    def _rule_by_rule(self, rules: frozenset[str] | None) -> tuple[dict[str, Any], list[RuleFailure]]:
        """Each enabled rule's `deny` on its own (the input is already set): a rule whose
        `deny` is undefined for this document reports nothing, a rule that fails is a failure,
        the others report as usual."""
        found: dict[str, Any] = {}
        failures: list[RuleFailure] = []
        for package, rule in sorted(self._packages.items()):
            if rules is None or rule.id in rules:
                try:
                    found[package] = _query_values(json.loads(self._engine.eval_query_as_json(deny_ref(package))))
                except RuntimeError as exc:
                    failures.append(rule_failure(rule, str(exc)))
        return found, failures

    def evaluate_fleet(self, rule: Rule, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The `deny` set of a fleet rule over a summary of pipelines; RuleFailed when the rule
        fails while it runs on them."""
        self._engine.set_input_json(json.dumps({"pipelines": pipelines}))
        try:
            raw = json.loads(self._engine.eval_rule_as_json(f"data.{rule.package}.deny"))
        except RuntimeError as exc:
            if str(exc).strip() == "not a valid rule path":  # no `deny` at all: nothing to report
                return []
            raise RuleFailed(rule_failure(rule, str(exc))) from None
        if not isinstance(raw, list):  # undefined (a complete `deny` whose body failed)
            return []
        return [v for v in raw if isinstance(v, dict)]


def _query_values(answer: Any) -> Any:
    """The value of a one-expression query's answer (`{}` or no result when undefined)."""
    results = answer.get("result") if isinstance(answer, dict) else None
    if not results:
        return []
    expressions = results[0].get("expressions") or [{}]
    return expressions[0].get("value", [])


class RegorusTestEngine:
    """The embedded engine for `pipewarden policy test` (a `PolicyTestEngine`)."""

    def __init__(self, engine: Any = None) -> None:
        self._engine: Any = engine if engine is not None else regorus.Engine()

    def add_file(self, path: str) -> None:
        _add_policy(self._engine, path)

    def add_module(self, name: str, text: str) -> None:
        try:
            self._engine.add_policy(name, text)
        except RuntimeError as exc:
            raise PolicyError(*_compile_error(str(exc), name)) from None

    def copy(self) -> RegorusTestEngine:
        return RegorusTestEngine(self._engine.clone())

    def value_of(self, ref: str) -> Any:
        try:
            value = json.loads(self._engine.eval_rule_as_json(ref))
        except RuntimeError as exc:
            raise EvaluationError(error_text(str(exc))) from None
        return UNDEFINED if value == _UNDEFINED else value


def syntax_tree(name: str, text: str) -> dict[str, Any] | None:
    """regorus's AST of one module (`package`, `imports`, `rules`), None when it does not parse.
    Nodes are one-key objects (`{"Var": {...}}`); spans are 1-based lines and UTF-8 byte offsets."""
    engine = regorus.Engine()
    try:
        engine.add_policy(name, text)
        modules = json.loads(engine.get_ast_as_json())
    except (RuntimeError, ValueError):
        return None
    if not isinstance(modules, list) or not modules or not isinstance(modules[0], dict):
        return None
    ast = modules[0].get("ast")
    return ast if isinstance(ast, dict) else None


def error_text(text: str) -> str:
    """`FILE:LINE: WHAT` from regorus's `--> FILE:LINE:COL`, excerpt, `error: WHAT` (no
    backtrace); the text as it is when it has another shape."""
    lines = [line.strip() for line in text.split("Stack backtrace:")[0].strip().splitlines()]
    place = next((m for line in lines if (m := _LOCATION.match(line))), None)
    what = next((line[len("error:"):].strip() for line in lines if line.startswith("error:")), None)
    if what is None:
        return " ".join(line for line in lines if line) or "the engine gave no reason"
    return f"{place.group(1)}:{place.group(2)}: {what}" if place else what
