"""`config validate` as one typed function: load an org-config tree on its own, and say what in
it, though valid, leaves a gap a policy owner should close."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pipewarden.evaluation.context import build_context
from pipewarden.orgs.tree import OrgTree
from pipewarden.policy.builtin import UNKNOWN_TEAM


@dataclass(frozen=True)
class ConfigCheck:
    """A valid tree and the warnings about it (each a line naming the file and line)."""

    tree: OrgTree
    warnings: tuple[str, ...]


def validate_config(directory: str, policies: Sequence[str], now: dt.datetime) -> ConfigCheck:
    """Load the tree (a ConfigError with file and line on the first error) and look for gaps."""
    context = build_context(directory, policies, now)
    tree = context.tree
    assert tree is not None
    warnings: list[str] = []
    # A pipeline whose team is in no node (a typo such as `Cart` for `cart`) gets the root's
    # settings: unless the root enforces unknown-team, the typo quietly swaps the team's locked
    # rules for the root's and the check passes.
    level, enforce_from = context.settings(tree.root)[UNKNOWN_TEAM.id].level_at(context.today)
    if level != "enforce":
        root = tree.nodes[tree.root]
        entry = root.rules.get(UNKNOWN_TEAM.id)
        where = f"{root.file}:{entry.line if entry is not None else root.line}"
        until = f" until {enforce_from}" if enforce_from else ""
        warnings.append(
            f"{where}: unknown-team is at {level}{until} in the root {tree.root!r}: a pipeline whose metadata.team "
            f"is mistyped gets the root's settings instead of its team's, and the check still passes; set "
            f"'unknown-team: {{level: enforce, locked: true}}' under the root's rules"
        )
    return ConfigCheck(tree, tuple(warnings))
