"""`exceptions list` and `exceptions add`: the exceptions of an org tree, for their owners.

New exceptions are capped: the root's `settings.max_exception_days`, or 180 days when the root
sets none. The loader enforces the cap only where the root sets it (org-config.md), so trees
written before the cap existed keep loading; the default applies to what is added from now on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import build_context
from pipewarden.orgs.edit import Edit, NewException, plan_exception, require_node, write_edit
from pipewarden.orgs.resolve import exception_status
from pipewarden.orgs.tree import OrgException, OrgTree
from pipewarden.policy.catalog import Catalog

DEFAULT_MAX_EXCEPTION_DAYS = 180


@dataclass(frozen=True)
class Listed:
    exception: OrgException
    status: str  # active | expiring | expired (exception_status)
    days_left: int | None  # None for a permanent exception; negative once expired


def list_exceptions(
    tree: OrgTree, org: str | None, today: dt.date, expiring: int | None = None, expired: bool = False
) -> list[Listed]:
    """Exceptions granted in `org`'s subtree (all without `org`), soonest to end first.

    `expiring` (active ones ending within that many days) and `expired` filter; given both, an
    exception matching either is listed: together they are the "needs attention" list.
    """
    names = tree.subtree(org) if org is not None else tree.subtree(tree.root)
    listed = []
    for name in names:
        for exception in tree.nodes[name].exceptions:
            days = (exception.expires - today).days if exception.expires is not None else None
            item = Listed(exception, exception_status(exception, today), days)
            is_expired = item.status == "expired"
            ends_soon = expiring is not None and not is_expired and days is not None and days <= expiring
            unfiltered = expiring is None and not expired
            if unfiltered or (expired and is_expired) or ends_soon:
                listed.append(item)
    listed.sort(key=lambda i: (i.days_left is None, i.days_left or 0, i.exception.org, i.exception.rule))
    return listed


def org_exceptions(
    org_config: str, policies: Sequence[str], now: dt.datetime, org: str | None = None,
    expiring: int | None = None, expired: bool = False,
) -> list[Listed]:
    """`exceptions list`: load the org tree and list its exceptions (`list_exceptions`)."""
    context = build_context(org_config, policies, now)
    assert context.tree is not None
    if org is not None:
        require_node(context.tree, org, org_config)
    return list_exceptions(context.tree, org, context.today, expiring, expired)


def exception_cap(tree: OrgTree) -> tuple[int, str]:
    """(the longest a new exception may run, in days; where that number comes from)."""
    root = tree.nodes[tree.root]
    cap = root.settings.get("max_exception_days")
    if cap is None:
        return DEFAULT_MAX_EXCEPTION_DAYS, (f"the default; the root node {root.file} may set "
                                            "settings.max_exception_days")
    return int(cap), f"settings.max_exception_days in {root.file}"


def _check_scope(tree: OrgTree, org: str, teams: Sequence[str]) -> None:
    """A team outside the node's subtree would make the exception cover nothing."""
    subtree = set(tree.subtree(org))
    for team in teams:
        home = tree.node_for_team(team)
        if home is None and org != tree.root:
            raise UsageError(f"team {team!r} is in no org node; an exception in {org!r} can only cover "
                             f"teams of its subtree ({', '.join(sorted(subtree))})")
        if home is not None and home not in subtree:
            raise UsageError(f"team {team!r} belongs to org {home!r}, outside the subtree of {org!r}; "
                             f"grant the exception in {home!r} or one of its ancestors")


def plan_new_exception(
    tree: OrgTree, catalog: Catalog, org_config: str, org: str, new: NewException, today: dt.date
) -> Edit:
    """Check the date against the cap and the teams against the subtree, then plan the edit."""
    require_node(tree, org, org_config)
    if new.expires is not None:
        if new.expires < today:
            raise UsageError(f"--expires {new.expires.isoformat()} is in the past (today is {today.isoformat()})")
        cap, source = exception_cap(tree)
        days = (new.expires - today).days
        if days > cap:
            latest = today + dt.timedelta(days=cap)
            raise UsageError(
                f"--expires {new.expires.isoformat()} is {days} days from today; exceptions may run at most "
                f"{cap} days ({source}): expire by {latest.isoformat()}"
            )
    _check_scope(tree, org, new.teams)
    return plan_exception(tree, catalog, org_config, org, new)


def add_exception(org_config: str, policies: Sequence[str], now: dt.datetime, org: str, new: NewException) -> Edit:
    """`exceptions add`: load the org tree, plan the edit (`plan_new_exception`) and write it."""
    context = build_context(org_config, policies, now)
    assert context.tree is not None
    edit = plan_new_exception(context.tree, context.catalog, org_config, org, new, context.today)
    write_edit(edit, org_config, context.catalog, context.today)
    return edit
