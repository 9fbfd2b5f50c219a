"""What a run evaluates with: the rule catalog, the org tree and the day (`EvalContext`), and
`build_context`, which loads them for a run."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipewarden.evaluation.engines import rule_engine
from pipewarden.orgs.resolve import RuleSetting, default_settings, resolve_settings
from pipewarden.orgs.tree import OrgTree, load_org_tree
from pipewarden.policy.catalog import Catalog, load_catalog


@dataclass
class EvalContext:
    """What a run evaluates with: the catalog, the org tree (optional) and today's date (UTC).

    The private fields are memos, filled on first use with values that follow from the public
    fields alone, each by one dict or attribute assignment: threads that share a context at worst
    compute one twice.
    """

    catalog: Catalog
    tree: OrgTree | None
    today: dt.date
    overrides: dict[str, dict[str, RuleSetting]] = field(default_factory=dict)
    _settings: dict[str | None, dict[str, RuleSetting]] = field(default_factory=dict)
    _levels: dict[tuple[str | None, str], tuple[str, str | None]] = field(default_factory=dict)
    _excepted: set[str] | None = None
    _params_json: dict[str | None, tuple[frozenset[str], str]] = field(default_factory=dict)

    def enabled_params(self, node: str | None) -> tuple[frozenset[str], str]:
        """The rules not `off` for `node`, and their params as the engine's JSON (made once)."""
        if node not in self._params_json:
            settings = self.settings(node)
            params = {rule_id: s.params for rule_id, s in settings.items() if s.level_at(self.today)[0] != "off"}
            self._params_json[node] = (frozenset(params), json.dumps(params))
        return self._params_json[node]

    def excepted_rules(self) -> set[str]:
        """Rules with an exception anywhere in the tree: the others skip the lookup."""
        if self._excepted is None:
            tree = self.tree
            self._excepted = {e.rule for n in tree.nodes.values() for e in n.exceptions} if tree else set()
        return self._excepted

    def node_of(self, team: str | None) -> str | None:
        """The org node a pipeline's team belongs to (the root for unknown teams)."""
        if self.tree is None:
            return None
        return self.tree.node_for_team(team) or self.tree.root

    def settings(self, node: str | None) -> dict[str, RuleSetting]:
        """Effective rule settings for `node` (catalog defaults without an org tree)."""
        if node not in self._settings:
            if node is not None and node in self.overrides:
                self._settings[node] = self.overrides[node]
            elif self.tree is None or node is None:
                self._settings[node] = default_settings(self.catalog)
            else:
                self._settings[node] = resolve_settings(self.tree, node, self.catalog)
        return self._settings[node]


def build_context(org_config: str | None, policies: Sequence[str], now: dt.datetime) -> EvalContext:
    """Load the catalog (built-in + `policies`) and, when given, the org tree."""
    catalog = load_catalog(tuple(policies))
    if policies:
        # Compile an organisation's own rules now, so that every command (also `rules list` and
        # `config validate`) reports a rule that does not compile, not only those that evaluate.
        rule_engine(catalog)
    today = now.astimezone(dt.UTC).date()
    tree = load_org_tree(org_config, catalog, today) if org_config is not None else None
    return EvalContext(catalog, tree, today)
