"""engine/domain imports only the standard library, pipewarden.model, itself and `packaging` (pure
version arithmetic: PEP 440 specifiers and PEP 503 names for the blocklist gate; no I/O)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pipewarden.engine.domain

DOMAIN = Path(pipewarden.engine.domain.__file__).parent
ALLOWED_PREFIXES = ("pipewarden.model", "pipewarden.engine.domain", "packaging.")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_is_pure() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        for name in imported(path):
            top = name.split(".")[0]
            ok = top in sys.stdlib_module_names or name.startswith(ALLOWED_PREFIXES)
            assert ok, f"{path.relative_to(DOMAIN)} imports {name}"
            assert top not in {"subprocess", "socket", "sqlite3", "temporalio", "sqlalchemy", "os", "io"}, \
                f"{path.relative_to(DOMAIN)} imports {name}: no I/O in the domain"
