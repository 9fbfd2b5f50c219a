"""`exceptions list`, `add`, `remove` and `renew`: the exceptions of an org tree, for their owners.

New exceptions are capped: the root's `settings.max_exception_days`, or 180 days when the root
sets none. The loader enforces the cap only where the root sets it (org-config.md), so trees
written before the cap existed keep loading; the default applies to what is added from now on.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.fleet_input import load_fleet
from pipewarden.load.pipeline import load_pipeline
from pipewarden.orgs.edit import (
    Edit,
    NewException,
    plan_exception,
    plan_remove_exception,
    plan_renew_exception,
    require_node,
    write_edit,
)
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


def _check_expires(tree: OrgTree, expires: dt.date, today: dt.date) -> None:
    """An end date in the future, within the cap (`exception_cap`)."""
    if expires < today:
        raise UsageError(f"--expires {expires.isoformat()} is in the past (today is {today.isoformat()})")
    cap, source = exception_cap(tree)
    days = (expires - today).days
    if days > cap:
        latest = today + dt.timedelta(days=cap)
        raise UsageError(
            f"--expires {expires.isoformat()} is {days} days from today; exceptions may run at most "
            f"{cap} days ({source}): expire by {latest.isoformat()}"
        )


def plan_new_exception(
    tree: OrgTree, catalog: Catalog, org_config: str, org: str, new: NewException, today: dt.date
) -> Edit:
    """Check the date against the cap and the teams against the subtree, then plan the edit."""
    require_node(tree, org, org_config)
    if new.expires is not None:
        _check_expires(tree, new.expires, today)
    _check_scope(tree, org, new.teams)
    return plan_exception(tree, catalog, org_config, org, new)


@dataclass(frozen=True)
class FleetNames:
    """The pipelines of a fleet as `exceptions add` checks names against them: each pipeline
    name with its team, and the teams the fleet knows (of pipelines, or an inventory's repos)."""

    pipelines: dict[str, str | None]
    teams: frozenset[str]
    where: str


def fleet_names(paths: Sequence[str], inventory: str | None, cache_dir: str | None) -> FleetNames:
    """Read the fleet's pipeline files for their names and teams (nothing is evaluated). Files of
    other tools are left out, as `check` leaves them out."""
    fleet = load_fleet(paths, inventory, cache_dir)
    files = [load_pipeline(path) for path in fleet.paths] + list(fleet.loaded)
    pipelines: dict[str, str | None] = {}
    teams: set[str] = {r.team for r in fleet.repos if r.team}
    for file in files:
        if file.foreign and file.file in fleet.discovered:
            continue
        if file.name is not None:
            pipelines.setdefault(file.name, file.team)
        if file.team is not None:
            teams.add(file.team)
    where = f"the inventory {inventory}" if inventory is not None else ", ".join(paths)
    return FleetNames(pipelines, frozenset(teams), where)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.75)
    same = [k for k in known if k.casefold() == name.casefold()]
    guesses = same or close
    return f"; did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""


def unmatched_names(tree: OrgTree, org: str, new: NewException, fleet: FleetNames | None) -> list[str]:
    """Why each `--pipeline` and `--team` of `new` matches nothing known: not in the fleet (or
    outside the node's subtree), or a team that no node declares and no pipeline of the fleet
    has. Without a fleet, pipeline names cannot be checked: one line says so."""
    problems: list[str] = []
    subtree = set(tree.subtree(org))
    if new.pipelines and fleet is None:
        problems.append("--pipeline names were not checked: give the fleet (PATH ... or --inventory FILE) "
                        "to check them")
    for pipeline in new.pipelines:
        if fleet is None:
            break
        if pipeline not in fleet.pipelines:
            count = len(fleet.pipelines)
            problems.append(f"--pipeline {pipeline!r} matches no pipeline in {fleet.where} "
                            f"({count} pipeline{'' if count == 1 else 's'}){_did_you_mean(pipeline, list(fleet.pipelines))}")
            continue
        team = fleet.pipelines[pipeline]
        home = tree.node_for_team(team) or tree.root
        if home not in subtree:
            problems.append(f"--pipeline {pipeline!r} belongs to team {team!r} of org {home!r}, outside the "
                            f"subtree of {org!r}: the exception would not cover it; grant it in {home!r} or "
                            "one of its ancestors")
    for team in new.teams:
        if tree.node_for_team(team) is not None:
            continue  # declared (and in the subtree: _check_scope refuses the others)
        if fleet is not None and team in fleet.teams:
            continue  # an undeclared team that has pipelines: they belong to the root
        known = list(tree.team_nodes) + (list(fleet.teams) if fleet is not None else [])
        also = f" and no pipeline in {fleet.where} has it" if fleet is not None else ""
        problems.append(f"--team {team!r} is in no org node{also}{_did_you_mean(team, known)}")
    return problems


@dataclass(frozen=True)
class Added:
    edit: Edit
    warnings: tuple[str, ...]


def add_exception(
    org_config: str, policies: Sequence[str], now: dt.datetime, org: str, new: NewException,
    paths: Sequence[str] = (), inventory: str | None = None, cache_dir: str | None = None, strict: bool = False,
) -> Added:
    """`exceptions add`: load the org tree, plan the edit (`plan_new_exception`), check the names
    against the fleet (when PATHs or an inventory are given) and the tree, and write it; with
    `strict`, a name that matches nothing is a UsageError and nothing is written."""
    context = build_context(org_config, policies, now)
    assert context.tree is not None
    edit = plan_new_exception(context.tree, context.catalog, org_config, org, new, context.today)
    fleet = fleet_names(paths, inventory, cache_dir) if paths or inventory is not None else None
    warnings = unmatched_names(context.tree, org, new, fleet)
    if strict and warnings:
        raise UsageError("--strict: nothing written: " + "; ".join(warnings))
    write_edit(edit, org_config, context.catalog, context.today)
    return Added(edit, tuple(warnings))


def remove_exception(
    org_config: str, policies: Sequence[str], now: dt.datetime, org: str, rule: str,
    pipelines: tuple[str, ...], teams: tuple[str, ...],
) -> Edit:
    """`exceptions remove`: delete the one matching entry of `org` (UsageError when none or
    several match), keeping every other line of the file."""
    context = build_context(org_config, policies, now)
    assert context.tree is not None
    edit = plan_remove_exception(context.tree, org_config, org, rule, pipelines, teams)
    write_edit(edit, org_config, context.catalog, context.today)
    return edit


def renew_exception(
    org_config: str, policies: Sequence[str], now: dt.datetime, org: str, rule: str,
    pipelines: tuple[str, ...], teams: tuple[str, ...], expires: dt.date,
) -> Edit:
    """`exceptions renew`: set the `expires` of the one matching entry of `org`, within the cap."""
    context = build_context(org_config, policies, now)
    assert context.tree is not None
    require_node(context.tree, org, org_config)
    _check_expires(context.tree, expires, context.today)
    edit = plan_renew_exception(context.tree, org_config, org, rule, pipelines, teams, expires)
    write_edit(edit, org_config, context.catalog, context.today)
    return edit
