"""A rule reads only the parameters its METADATA declares (issue 15, item 7).

A rule that reads `input.params["prod_smoke_tests"]` when its id is `prod-smoke-tests`, or
`_params.min_minute` when it declares `min_minutes`, reads an undefined value: Rego does not
fail, the rule's body just never holds, and the rule silently finds nothing. This module finds
such reads in a rule's source, so that loading the rule fails instead, naming the file, the line
and the names the METADATA declares.

The source is read through the embedded engine's parser (regoast.py): only parsing, so the
check does not depend on which engine later evaluates the rule. What counts as a read of
the rule's parameters (`P` below):

- `input.params["<id>"]` (or `input.params.<id>` when the id has no dash);
- a name bound to P: a rule of the module (`_params := input.params["<id>"]`) or a local
  variable of one rule body (`p := input.params["<id>"]`);

and a parameter is read as `P.name`, `P["name"]` or `object.get(P, "name", default)`. Reading
`input.params` under any other key than the rule's own id is an error too (the engine gives a
rule only its own parameters; another rule's are there only while that rule is on), and so is any
read of `input.params` in a fleet rule (its input is `input.pipelines` only). Reads through a
computed key (`P[name]`) or through a function's argument are not followed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pipewarden.errors import ConfigError
from pipewarden.policy.regoast import line_of, node, parse_module, var_name, walk
from pipewarden.policy.rule import Rule

_STRING_KINDS = ("String", "RawString")


@dataclass(frozen=True)
class ParamProblem:
    line: int
    message: str


def declared_params(rule: Rule) -> list[str]:
    """The parameter names a rule's METADATA declares: its default `params` and the
    `properties` of its `params_schema`."""
    properties = rule.params_schema.get("properties")
    names = list(rule.params)
    if isinstance(properties, dict):
        names += [str(name) for name in properties if name not in rule.params]
    return names


def check_param_reads(rule: Rule, text: str) -> None:
    """ConfigError at the first (lowest) line where `rule` reads a parameter it does not declare."""
    problems = param_problems(rule, text)
    if problems:
        first = min(problems, key=lambda p: p.line)
        more = len(problems) - 1
        suffix = f" ({more} more such read{'s' if more > 1 else ''} in this file)" if more else ""
        raise ConfigError(first.message + suffix, rule.source, first.line)


def param_problems(rule: Rule, text: str) -> list[ParamProblem]:
    """Every read of an undeclared parameter (or of another key of `input.params`) in `text`, the
    source of `rule`. A module that does not parse has none here: compiling it reports that."""
    module = parse_module(rule.source or "rule.rego", text)
    rules = module.get("rules") if module is not None else None
    return _Checker(rule).run(rules if isinstance(rules, list) else [])


def _string(value: Any) -> tuple[str, int] | None:
    """(text, line) of a string literal."""
    found = node(value)
    if found is None or found[0] not in _STRING_KINDS or not isinstance(found[1].get("value"), str):
        return None
    return found[1]["value"], line_of(found[1])


def _key(fields: dict[str, Any], kind: str) -> tuple[str, int] | None:
    """The constant key (name, line) of a `RefDot` or `RefBrack` node, when it has one."""
    if kind == "RefDot":
        field = fields.get("field")
        if isinstance(field, list) and len(field) == 2 and isinstance(field[1], str):
            line = field[0].get("line", 1) if isinstance(field[0], dict) else 1
            return field[1], int(line)
        return None
    if kind == "RefBrack":
        return _string(fields.get("index"))
    return None


def _is_params_root(value: Any) -> bool:
    """`input.params` or `input["params"]`."""
    found = node(value)
    if found is None or found[0] not in ("RefDot", "RefBrack"):
        return False
    key = _key(found[1], found[0])
    return key is not None and key[0] == "params" and var_name(found[1].get("refr")) == "input"


class _Checker:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.declared = declared_params(rule)
        self.problems: list[ParamProblem] = []
        self.aliases: set[str] = set()

    def run(self, rules: list[Any]) -> list[ParamProblem]:
        module_aliases: set[str] = set()
        for _ in range(2):  # an alias of an alias (`_q := _p`) is found on the second pass
            self.aliases = module_aliases
            for spec in rules:
                name = self._head_alias(spec)
                if name is not None:
                    module_aliases.add(name)
        for spec in rules:
            self.aliases = module_aliases | self._local_aliases(spec, module_aliases)
            for kind, fields in walk(spec):
                self._visit(kind, fields)
        return sorted(set(self.problems), key=lambda p: (p.line, p.message))

    def _is_params(self, value: Any) -> bool:
        """`value` is this rule's parameters: `input.params["<id>"]` or a name bound to it."""
        alias = var_name(value)
        if alias is not None:
            return alias in self.aliases
        found = node(value)
        if found is None or not _is_params_root(found[1].get("refr")):
            return False
        key = _key(found[1], found[0])
        return key is not None and key[0] == self.rule.id

    def _head_alias(self, spec: Any) -> str | None:
        """`_params := input.params["<id>"]` at the top of the module: the rule's name."""
        found = node(spec)
        if found is None or found[0] != "Spec":
            return None
        head = node(found[1].get("head"))
        if head is None or head[0] != "Compr":
            return None
        name = var_name(head[1].get("refr"))
        assign = head[1].get("assign")
        if name is None or not isinstance(assign, dict):
            return None
        return name if self._is_params(assign.get("value")) else None

    def _local_aliases(self, spec: Any, module_aliases: set[str]) -> set[str]:
        """Variables of one rule bound to the parameters (`p := input.params["<id>"]`)."""
        self.aliases = set(module_aliases)
        found: set[str] = set()
        for _ in range(2):
            for kind, fields in walk(spec):
                if kind == "AssignExpr" and self._is_params(fields.get("rhs")):
                    name = var_name(fields.get("lhs"))
                    if name is not None:
                        found.add(name)
            self.aliases = module_aliases | found
        return found

    def _visit(self, kind: str, fields: dict[str, Any]) -> None:
        if kind in ("RefDot", "RefBrack"):
            refr = fields.get("refr")
            key = _key(fields, kind)
            if _is_params_root(refr):
                if self.rule.kind == "fleet":
                    self._fleet_read(line_of(fields))
                elif key is not None and key[0] != self.rule.id:
                    self._wrong_key(key[0], key[1])
            elif key is not None and self._is_params(refr):
                self._param_read(key[0], key[1], kind == "RefDot")
        elif kind == "Call" and self._is_object_get(fields.get("fcn")):
            args = fields.get("params")
            if isinstance(args, list) and len(args) >= 2 and self._is_params(args[0]):
                name = _string(args[1])
                if name is not None:
                    self._param_read(name[0], name[1], False)

    @staticmethod
    def _is_object_get(function: Any) -> bool:
        found = node(function)
        if found is None or found[0] != "RefDot" or var_name(found[1].get("refr")) != "object":
            return False
        key = _key(found[1], "RefDot")
        return key is not None and key[0] == "get"

    def _describe_declared(self) -> str:
        if not self.declared:
            return "it declares none (custom.params is empty)"
        return "declared: " + ", ".join(repr(n) for n in self.declared)

    def _suggest(self, name: str, candidates: list[str]) -> str:
        def plain(text: str) -> str:
            return text.lower().replace("-", "_")

        same = [c for c in candidates if plain(c) == plain(name)]
        close = same or difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
        return f"; did you mean {close[0]!r}?" if close else ""

    def _param_read(self, name: str, line: int, dotted: bool) -> None:
        if name in self.declared:
            return
        how = f".{name}" if dotted else f'["{name}"]'
        self.problems.append(ParamProblem(line, (
            f"rule '{self.rule.id}' reads the parameter {name!r} (input.params[\"{self.rule.id}\"]{how}), "
            f"which its METADATA does not declare ({self._describe_declared()}{self._suggest(name, self.declared)}): "
            "declare it in custom.params (with its default) and custom.params_schema, or read a declared one"
        )))

    def _wrong_key(self, key: str, line: int) -> None:
        self.problems.append(ParamProblem(line, (
            f"rule '{self.rule.id}' reads input.params[\"{key}\"], but a rule's parameters are under its own id, "
            f"with dashes: read input.params[\"{self.rule.id}\"] ({self._describe_declared()})"
        )))

    def _fleet_read(self, line: int) -> None:
        self.problems.append(ParamProblem(line, (
            f"fleet rule '{self.rule.id}' reads input.params, but a fleet rule's input holds only "
            "input.pipelines: the value is always undefined; remove the read or make the value a constant"
        )))
