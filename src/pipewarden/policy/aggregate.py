"""The one module that asks for every enabled rule's `deny` of a document in one query: its text,
shared by both backends (the embedded engine, regorus.py, and an OPA server, opa.py), which
compile or upload it under a package of their own (`pipewarden.main.<name>`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipewarden.errors import PolicyError
from pipewarden.policy.rule import Rule


def deny_ref(package: str) -> str:
    """`data["pipewarden"]["rules"]["x"]["deny"]`: brackets, so that a package part that is a
    Rego keyword (`in`, `if`, `every`) still makes a valid reference."""
    return "data" + "".join(f'["{part}"]' for part in package.split(".")) + '["deny"]'


def aggregator_module(package: str, rules: list[Rule]) -> str:
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


def violations_of(raw: Mapping[str, Any], rules: Mapping[str, Rule]) -> list[tuple[str, str, str]]:
    """The (rule id, path, message) of each violation in the aggregator's `violations` object (or
    the same object built rule by rule), for the packages in `rules` (package -> rule; others are
    ignored). A `deny` that is not a set of objects is a PolicyError naming the rule."""
    found: list[tuple[str, str, str]] = []
    for package, violations in raw.items():
        rule = rules.get(package)
        if rule is None:
            continue
        if not isinstance(violations, list) or not all(isinstance(v, dict) for v in violations):
            raise PolicyError(
                f"rule {rule.id}: `deny` must be a set of objects with `msg` and `path`, "
                f"as in `deny contains {{\"msg\": ..., \"path\": ...}} if {{ ... }}`", rule.source, rule.deny_line,
            )
        found.extend((rule.id, str(v.get("path", "")), str(v.get("msg", ""))) for v in violations)
    return found
