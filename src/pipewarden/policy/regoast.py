"""Rego source as a syntax tree: the embedded engine's parser (regorus's AST, as JSON, through
`policy.engine.rego_syntax_tree`).

Only parsing: what is read from the tree (which parameters a rule reads, the statements of a
failing test) does not depend on the engine that evaluates the rules. The tree's nodes are
objects with one key, the node's kind (`{"Var": {...}}`, `{"RefDot": {...}}`); every node has a
`span` with its 1-based `line` and its `start`/`end` offsets in the UTF-8 bytes of the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def parse_module(name: str, text: str) -> dict[str, Any] | None:
    """The module's tree (`package`, `imports`, `rules`), or None when it does not parse."""
    from pipewarden.policy.engine import rego_syntax_tree

    return rego_syntax_tree(name, text)


def node(value: Any) -> tuple[str, dict[str, Any]] | None:
    """(kind, fields) of a node such as `{"Var": {...}}`, else None."""
    if isinstance(value, dict) and len(value) == 1:
        kind, fields = next(iter(value.items()))
        if isinstance(kind, str) and kind[:1].isupper() and isinstance(fields, dict):
            return kind, fields
    return None


def var_name(value: Any) -> str | None:
    """The name of a `Var` node."""
    found = node(value)
    if found is None or found[0] != "Var" or not isinstance(found[1].get("value"), str):
        return None
    name: str = found[1]["value"]
    return name


def line_of(fields: dict[str, Any]) -> int:
    span = fields.get("span")
    return int(span.get("line", 1)) if isinstance(span, dict) else 1


def walk(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node under `value` (itself included), parents before children."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            found = node(item)
            if found is not None:
                yield found
                stack.extend(reversed(list(found[1].values())))
            else:
                stack.extend(reversed(list(item.values())))
