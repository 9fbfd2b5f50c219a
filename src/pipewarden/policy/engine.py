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

from pipewarden.errors import PolicyError
from pipewarden.policy.catalog import Catalog

# One query per document for all its enabled rules: an object of each rule package's `deny`
# set, keyed by package name. The object names each package's `deny` explicitly (see
# `_aggregator`): asking for `data.pipewarden.rules[name]` with `name` unbound makes the
# engine evaluate every rule of every package, helpers included, and off rules too.
_AGGREGATOR_PACKAGE = "pipewarden.main"
_LINE = re.compile(r":(\d+):")


def new_engine() -> Any:
    """A fresh embedded engine (one per process and thread)."""
    return regorus.Engine()


def _add_policy(engine: Any, path: str) -> None:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        engine.add_policy(path, text)
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policy file: {exc}", path, 1) from None
    except RuntimeError as exc:
        raise PolicyError(*_compile_error(str(exc), path)) from None


def _compile_error(text: str, path: str) -> tuple[str, str, int]:
    """regorus reports `--> file:LINE:COL`, a source excerpt, then `error: WHAT`: keep WHAT and LINE."""
    lines = [line.strip() for line in text.strip().splitlines()]
    where = next((_LINE.search(line) for line in lines if line.startswith("-->")), None)
    what = next((line[len("error:"):].strip() for line in lines if line.startswith("error:")), None)
    detail = what or " ".join(lines[:4])
    return f"the policy does not compile: {detail}", path, int(where.group(1)) if where else 1


def _aggregator(package: str, rule_packages: list[str]) -> str:
    """A module whose `violations` object holds the `deny` set of each package given.

    The catalog accepts only partial-set `deny` rules, which are never undefined (at worst
    empty), so no entry can make the object undefined. (A `default` per entry would cost the
    engine a rule evaluation each: about 3 µs per rule per document.)
    """
    entries = [f'\t"{p.rsplit(".", 1)[1]}": data.{p}.deny,' for p in rule_packages]
    return "\n".join([f"package {package}", "", "import rego.v1", "", "violations := {", *entries, "}", ""])


class RuleEngine:
    """Evaluates the catalog's Rego rules. Not thread-safe: one per process."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._packages = catalog.by_package()
        self._engine = new_engine()
        for path in catalog.rego_files():
            _add_policy(self._engine, path)
        # One aggregator per set of enabled rules (an org tree has a few), made on first use.
        self._queries: dict[frozenset[str] | None, str] = {}

    def _query(self, rules: frozenset[str] | None) -> str:
        if rules not in self._queries:
            wanted = sorted(
                str(r.package) for r in self._packages.values() if rules is None or r.id in rules
            )
            package = f"{_AGGREGATOR_PACKAGE}.q{len(self._queries)}"
            self._engine.add_policy(f"pipewarden/{package}.rego", _aggregator(package, wanted))
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
        try:
            raw = json.loads(self._engine.eval_rule_as_json(query))
        except RuntimeError as exc:
            raise PolicyError(f"a rule failed to evaluate: {str(exc).strip()}") from None
        found = []
        for package, violations in (raw or {}).items():
            rule = self._packages.get(package)
            if rule is None or not isinstance(violations, list):
                continue
            for violation in violations:
                if isinstance(violation, dict):
                    found.append((rule.id, str(violation.get("path", "")), str(violation.get("msg", ""))))
        return found

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
