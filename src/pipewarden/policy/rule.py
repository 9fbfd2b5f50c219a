"""A rule's metadata: the value the catalog, the engines, org configs and docs all share.

In a module of its own so that the built-in rules (builtin.py) and the catalog that reads the
Rego ones (catalog.py) can both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rule:
    """One rule's metadata; `kind` is `document`, `fleet` or `builtin`."""

    id: str
    title: str
    description: str
    rationale: str
    remediation: str
    level: str
    params: dict[str, Any]
    params_schema: dict[str, Any]
    prod_only: bool
    kind: str
    package: str | None = None
    source: str | None = None
    custom: bool = False
    # An organisation's own rule's docs page: the first `related_resources` link of its METADATA
    # (OPA's annotation); None for built-in rules, whose pages are under the docs base URL.
    docs_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # Every `deny` head is `deny contains`: the set is defined, empty at worst (see regorus.py).
    deny_always_defined: bool = True
    deny_line: int = 1  # of the first `deny` head, for messages about it
