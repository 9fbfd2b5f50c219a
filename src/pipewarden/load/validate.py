"""Schema validation with jsonschema-quality messages and a fast path for valid documents.

Most documents are valid, so they go through a compiled validator (fastjsonschema) that only
answers yes or no. A document that fails is validated again with jsonschema to collect every
error with its path; the caller reports the one on the lowest line.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fastjsonschema

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load.yamlsafe import MAX_BYTES, ParsedYaml, load_yaml_file
from pipewarden.model.paths import join_index, join_key
from pipewarden.schemas import load_schema

_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF"}


@dataclass(frozen=True)
class Issue:
    """One reason a document is invalid: the path at fault and what to do about it."""

    path: str
    message: str


def path_of(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path = join_index(path, part) if isinstance(part, int) else join_key(path, str(part))
    return path


@cache
def _compiled(name: str) -> Callable[[Any], Any]:
    """fastjsonschema's generated validator, used as a yes/no gate, minus its name formatting.

    The generated code formats a name for every list item and map value it descends into
    (`"...[{i}]".format(**locals())`, a dict of all the function's locals each time), only to
    put it into the message of an error we never show: messages come from jsonschema. Dropping
    the call leaves every check as it was and takes a typical pipeline from ~108 to ~70 µs.
    tests/test_loader.py holds the gate equal to jsonschema's verdict on mutated documents.
    """
    code = fastjsonschema.compile_to_code(copy.deepcopy(load_schema(name)))
    code = code.replace(".format(**locals())", "")
    entry = re.search(r"^def (\w+)\(", code, re.MULTILINE)
    assert entry is not None, "fastjsonschema generated no validation function"
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{name} schema gate>", "exec"), namespace)  # noqa: S102 - code generated from our own schema
    validator: Callable[[Any], Any] = namespace[entry.group(1)]
    return validator


@cache
def _detailed(name: str) -> Any:
    # jsonschema is imported only when a document is invalid: it costs ~80 ms of start-up,
    # which a single-file check in CI should not pay for a valid file.
    import jsonschema

    return jsonschema.Draft7Validator(load_schema(name))


def is_valid(name: str, document: Any) -> bool:
    try:
        _compiled(name)(document)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def schema_issues(name: str, document: Any) -> list[Issue]:
    """Every schema error of `document`, each at the most precise path available."""
    if is_valid(name, document):
        return []
    issues: list[Issue] = []
    for error in _detailed(name).iter_errors(document):
        issues.extend(_describe(error))
    return issues


def _leaf_errors(error: Any) -> list[Any]:
    """For oneOf/anyOf/allOf, the sub-errors say more than 'is not valid under any of'."""
    if error.validator in ("oneOf", "anyOf", "allOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        chosen = [e for e in error.context if len(e.absolute_path) == deepest]
        if error.validator != "allOf" and deepest == len(error.absolute_path):
            return [error]
        return chosen
    return [error]


def _describe(error: Any) -> list[Issue]:
    issues: list[Issue] = []
    for leaf in _leaf_errors(error):
        where = path_of(leaf.absolute_path)
        if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
            allowed = sorted(leaf.schema.get("properties", {}))
            for key in _unknown_keys(leaf):
                hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
                issues.append(Issue(join_key(where, str(key)), f"unknown key {str(key)!r}{hint}"))
            continue
        if leaf.validator == "required":
            missing = str(leaf.message).split("'")[1] if "'" in leaf.message else "?"
            issues.append(Issue(join_key(where, missing), f"{_label(where)} is missing the required key {missing!r}"))
            continue
        issues.append(Issue(where, _message(leaf, where)))
    return issues


def _unknown_keys(error: Any) -> list[Any]:
    known = set(error.schema.get("properties", {}))
    return [key for key in error.instance if key not in known]


def _label(path: str) -> str:
    return f"'{path}'" if path else "the document"


def _message(error: Any, path: str) -> str:
    value = error.instance
    if error.validator == "type" and error.validator_value == "boolean" and value in _YAML11_BOOLEANS:
        return f"{_label(path)} must be true or false, not {value!r} (write true or false)"
    if error.validator == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        return f"{_label(path)} is {value!r}; expected one of: {options}"
    if error.validator == "const":
        return f"{_label(path)} is {value!r}; expected {error.validator_value!r}"
    if error.validator == "pattern":
        return f"{_label(path)} is {value!r}, which is not in the expected form ({_form(error.validator_value)})"
    if error.validator == "type":
        return f"{_label(path)} must be of type {error.validator_value}, not {_type_name(value)} {value!r}"
    if error.validator == "oneOf" and path.endswith("min_healthy"):
        return f"{_label(path)} is {value!r}; expected a percentage from 0% to 100% (such as 66%) or a host count (such as 2)"
    if error.validator == "minItems":
        return f"{_label(path)} must have at least {error.validator_value} item(s)"
    return f"{_label(path)}: {error.message}"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), "null"
    )


_FORMS = {
    "^[0-9]+[smhd]$": "a duration such as 90s, 30m, 1h or 2d",
    "^([01][0-9]|2[0-3]):[0-5][0-9]$": "a time HH:MM from 00:00 to 23:59",
    "^[a-z0-9][a-z0-9-]{0,62}$": "lowercase letters, digits and '-', at most 63 characters",
    "^(sqlite|postgresql(\\+psycopg)?://\\S+)$": "sqlite, or a PostgreSQL URL such as postgresql://user@host/db",
    "^https?://\\S+$": "an http:// or https:// URL",
}


def _form(pattern: str) -> str:
    if pattern in _FORMS:
        return _FORMS[pattern]
    if "%" in pattern:
        return "a percentage such as 66% or a host count such as 2"
    if ":" in pattern:
        return "host:port"
    return f"pattern {pattern}"


def non_finite_paths(value: Any, path: str = "") -> list[str]:
    """Paths of .inf/.nan numbers: JSON (and so the Rego engine) has no such values."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_paths(v, join_key(path, str(k)))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite_paths(v, join_index(path, i))]
    return []


def finite_issues(document: Any) -> list[Issue]:
    return [Issue(p, f"{_label(p)} is not a finite number; write a plain number") for p in non_finite_paths(document)]


def first_issue(parsed: ParsedYaml, issues: list[Issue]) -> tuple[Issue, int]:
    """The issue on the lowest line (ties keep the first found), and that line."""
    best = min(issues, key=lambda issue: parsed.line_of(issue.path))
    return best, parsed.line_of(best.path)


def load_config_file(file: str, schema: str, limit: int = MAX_BYTES) -> ParsedYaml:
    """Read a configuration file (an org node, an engine config) with the defended YAML reader
    and check it against the bundled schema `schema` (and for non-finite numbers).

    Returns the parsed document with its line map. Raises ConfigError naming `file` and the line
    of the problem: where the reader stopped (size, syntax, duplicate key...), else the schema
    error on the lowest line. Checks a schema cannot express are the caller's.
    """
    try:
        parsed = load_yaml_file(file, limit)
    except LoadError as error:
        raise ConfigError(error.message, file, error.line) from None
    issues = schema_issues(schema, parsed.value) + finite_issues(parsed.value)
    if issues:
        issue, line = first_issue(parsed, issues)
        raise ConfigError(issue.message, file, line)
    return parsed
