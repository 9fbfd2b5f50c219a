"""The Rego engine a run evaluates with: `rule_engine(catalog)`, the one place that hands it out.

Every evaluation (a document, a fleet rule, a whole run) asks this function for its engine and
never keeps one: an embedded engine must stay on the thread that made it, and a worker process
must not use one inherited through fork.
"""

from __future__ import annotations

from pipewarden.policy.catalog import Catalog
from pipewarden.policy.engine import RuleEngine, engine_for


def rule_engine(catalog: Catalog) -> RuleEngine:
    """This thread's engine for `catalog`, compiled on first use: one per thread and catalog, and
    a forked worker makes its own (policy.engine.engine_for)."""
    return engine_for(catalog)

