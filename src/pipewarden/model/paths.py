"""Paths into a document (`stages[0].window`, `windows["business-hours"]`) and their lines.

The path syntax of findings (cli.md): keys joined with dots, list indices and keys that are
not plain identifiers in brackets. Pure functions on strings: the loaders build the line maps,
the model and the reports read them.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def line_for(lines: dict[str, int], path: str) -> int:
    """The line of `path` in `lines`, or of its nearest parent there; 1 when none is."""
    current = path
    while True:
        line = lines.get(current)
        if line is not None:
            return line
        if current == "":
            return 1
        current = parent_path(current)


IDENT_CACHE: dict[str, bool] = {}


def join_key(parent: str, key: str) -> str:
    """`parent.key`, quoting keys that are not plain identifiers: `windows["business-hours"]`."""
    plain = IDENT_CACHE.get(key)
    if plain is None:
        plain = bool(_IDENT.match(key))
        if len(IDENT_CACHE) < 10_000:
            IDENT_CACHE[key] = plain
    if plain:
        return f"{parent}.{key}" if parent else key
    quoted = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{parent}[{quoted}]"


def join_index(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


def parent_path(path: str) -> str:
    """The path one level up; `""` is the root."""
    if path.endswith("]"):
        depth = 0
        in_quotes = False
        for i in range(len(path) - 1, -1, -1):
            ch = path[i]
            if ch == '"' and (i == 0 or path[i - 1] != "\\"):
                in_quotes = not in_quotes
            elif not in_quotes and ch == "]":
                depth += 1
            elif not in_quotes and ch == "[":
                depth -= 1
                if depth == 0:
                    return path[:i]
        return ""
    dot = path.rfind(".")
    bracket = path.rfind("]")
    if dot > bracket:
        return path[:dot]
    return path[: bracket + 1] if bracket >= 0 else ""
