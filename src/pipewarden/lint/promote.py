"""`rules promote`: the impact of a new rule level on a fleet, then the comment-keeping edit.

The preview evaluates the fleet once, with the same core as `check`, and applies two sets of
settings to the same violations: the tree as it is, and the tree as if the new level were in
force in the node (a schedule counts as reached). "As if" is a resolution of the tree with the
node's entry replaced, so the descendants that set their own level for the rule keep it, exactly
as they would after the edit, and the preview equals what `check` reports after the edit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import EvalContext, build_context
from pipewarden.evaluation.fleet_input import load_fleet
from pipewarden.evaluation.levels import to_findings
from pipewarden.evaluation.run import evaluate
from pipewarden.load.discover import Exclude
from pipewarden.load.inventory import Fleet
from pipewarden.model.finding import Finding, PipelineSummary
from pipewarden.orgs.edit import Edit, plan_rule_level, verify_edit, write_edit
from pipewarden.orgs.resolve import RuleSetting, resolve_settings
from pipewarden.orgs.tree import OrgTree, RuleEntry
from pipewarden.policy.builtin import POLICY_ERROR
from pipewarden.policy.catalog import Catalog


@dataclass(frozen=True)
class PromoteOptions:
    rule: str
    org: str
    org_config: str
    to: str | None = None
    enforce_from: dt.date | None = None
    dry_run: bool = False
    paths: tuple[str, ...] = ()
    inventory: str | None = None
    policies: tuple[str, ...] = ()
    cache_dir: str | None = None
    exclude: Exclude | None = None


@dataclass(frozen=True)
class TeamImpact:
    """One team's pipelines in the node's subtree, each in exactly one group (`pipelines` is their
    sum): what the promotion changes for it, and what it does not."""

    team: str | None
    org: str | None
    pipelines: int
    # The promotion makes them fail the check: a finding of the rule at enforce, no exception,
    # and no other finding that fails them today.
    newly_failing: tuple[PipelineSummary, ...]
    # A finding of the rule at enforce, no exception, but they fail the check today already
    # (another rule's finding): the promotion changes nothing for them.
    already_failing: tuple[PipelineSummary, ...]
    # Every finding of the rule is covered by an active exception: they never fail for it.
    excepted: tuple[PipelineSummary, ...]
    # Their findings of the rule are at warn after the promotion (a schedule of their node, or
    # a promotion to warn).
    warning: tuple[PipelineSummary, ...]
    # Their node's setting for the rule is the same after the promotion (a descendant that sets
    # its own level): whatever they show, the promotion does not cause it.
    not_affected: tuple[PipelineSummary, ...]
    # Affected, and no finding of the rule.
    no_finding: tuple[PipelineSummary, ...]
    blocked_before: bool
    blocked_after: bool

    @property
    def newly_blocked(self) -> bool:
        return self.blocked_after and not self.blocked_before


@dataclass(frozen=True)
class Impact:
    """What the fleet would show for the rule in the node's subtree with the new level in force.

    `findings` are the rule's findings in the subtree after the promotion, as `check` would
    report them (also those of pipelines the promotion does not affect)."""

    level: str
    teams: tuple[TeamImpact, ...]
    findings: tuple[Finding, ...]
    unaffected: tuple[tuple[str, str], ...]

    @property
    def newly_blocked(self) -> list[str]:
        return [t.team or "(no team)" for t in self.teams if t.newly_blocked]

    def totals(self) -> dict[str, int]:
        """Pipelines per group, which add up to `pipelines`, and the teams."""
        groups = ("newly_failing", "already_failing", "excepted", "warning", "not_affected", "no_finding")
        totals = {"pipelines": sum(t.pipelines for t in self.teams)}
        for group in groups:
            totals[group] = sum(len(getattr(t, group)) for t in self.teams)
        totals["teams"] = len(self.teams)
        totals["teams_newly_failing"] = sum(1 for t in self.teams if t.newly_failing)
        totals["newly_blocked"] = sum(1 for t in self.teams if t.newly_blocked)
        return totals


@dataclass
class Promotion:
    options: PromoteOptions
    now: dt.datetime
    today: dt.date
    current: tuple[str, str | None]
    planned_level: str
    edit: Edit
    impact: Impact
    catalog: Catalog
    notes: list[str] = field(default_factory=list)
    written: bool = False


# --- the fleet and the "as if" settings -----------------------------------------------------


def in_force_settings(
    tree: OrgTree, catalog: Catalog, org: str, rule: str, level: str
) -> dict[str, dict[str, RuleSetting]]:
    """Settings of every node of `org`'s subtree with `rule` at `level` in `org`, unscheduled."""
    node = tree.nodes[org]
    old = node.rules.get(rule)
    entry = RuleEntry(level, None, old.params if old else None, old.locked if old else False, node.file,
                      old.line if old else node.line)
    nodes = dict(tree.nodes)
    nodes[org] = replace(node, rules={**node.rules, rule: entry})
    modified = OrgTree(nodes, tree.root, tree.team_nodes, tree.children)
    return {name: resolve_settings(modified, name, catalog) for name in tree.subtree(org)}


def preview(
    fleet: Fleet, context: EvalContext, org: str, rule: str, level: str, notes: list[str] | None = None
) -> Impact:
    """Evaluate `fleet` now, with the tree as it is and as if `rule` were at `level` in `org`;
    `notes`, when given, receives the evaluation's notes."""
    tree = context.tree
    assert tree is not None
    after_context = EvalContext(context.catalog, tree, context.today,
                                overrides=in_force_settings(tree, context.catalog, org, rule, level))
    # One evaluation serves both: the after-settings run every rule the before-settings run
    # (plus the promoted rule), with the same parameters; levels are applied per context.
    evaluated = evaluate(fleet.paths, after_context, loaded=fleet.loaded, notes=notes, discovered=fleet.discovered)
    before = to_findings(evaluated, context)
    after = to_findings(evaluated, after_context)
    subtree = set(tree.subtree(org))
    in_scope = [p for p in after.pipelines if context.node_of(p.team) in subtree]
    files = {p.file for p in in_scope}
    # The rule's findings, and the `policy-error` findings of the rule failing while it ran (they
    # fail the pipeline in its place).
    rule_findings = tuple(f for f in after.findings if f.file in files and (
        f.rule == rule or (f.rule == POLICY_ERROR.id and f.failed_rule == rule)))

    def blocked(findings: Sequence[Finding]) -> set[str]:
        return {f.file for f in findings if f.blocks() and f.file in files}

    blocked_before, blocked_after = blocked(before.findings), blocked(after.findings)
    failing = {f.file for f in rule_findings if f.level == "enforce" and not f.excepted}
    warning = {f.file for f in rule_findings if f.level == "warn" and not f.excepted} - failing
    excepted = {f.file for f in rule_findings if f.excepted} - failing - warning
    # A node whose setting for the rule is the same before and after is not affected (it sets
    # its own level, or already has this one): the promotion changes nothing there.
    changed: dict[str, bool] = {}
    for name in subtree:
        now = context.settings(name)[rule].level_at(context.today)
        changed[name] = after_context.settings(name)[rule].level_at(context.today) != now
    by_team: dict[str | None, list[PipelineSummary]] = {}
    for pipeline in in_scope:
        by_team.setdefault(pipeline.team, []).append(pipeline)
    teams = []
    for team in sorted(by_team, key=lambda t: (t is None, t or "")):
        pipelines = by_team[team]
        groups: dict[str, list[PipelineSummary]] = {g: [] for g in (
            "newly_failing", "already_failing", "excepted", "warning", "not_affected", "no_finding")}
        for p in pipelines:
            if not changed.get(context.node_of(p.team) or "", True):
                group = "not_affected"
            elif p.file in failing:
                group = "already_failing" if p.file in blocked_before else "newly_failing"
            elif p.file in excepted:
                group = "excepted"
            elif p.file in warning:
                group = "warning"
            else:
                group = "no_finding"
            groups[group].append(p)
        teams.append(TeamImpact(
            team, context.node_of(team), len(pipelines),
            newly_failing=tuple(groups["newly_failing"]), already_failing=tuple(groups["already_failing"]),
            excepted=tuple(groups["excepted"]), warning=tuple(groups["warning"]),
            not_affected=tuple(groups["not_affected"]), no_finding=tuple(groups["no_finding"]),
            blocked_before=any(p.file in blocked_before for p in pipelines),
            blocked_after=any(p.file in blocked_after for p in pipelines),
        ))
    unaffected = tuple(
        (name, str(tree.nodes[name].rules[rule].level))
        for name in tree.subtree(org)[1:]
        if rule in tree.nodes[name].rules and tree.nodes[name].rules[rule].level is not None
    )
    return Impact(level, tuple(teams), rule_findings, unaffected)


# --- the command ------------------------------------------------------------------------------


def _planned(options: PromoteOptions, today: dt.date) -> tuple[str, str]:
    """(the level written to the file, the level previewed as in force)."""
    if options.enforce_from is None:
        level = options.to or "enforce"
        return level, level
    if options.to not in (None, "enforce"):
        raise UsageError("--from DATE schedules enforcement (level: warn until the date); "
                         f"it cannot be combined with --to {options.to}")
    if options.enforce_from <= today:
        raise UsageError(f"--from {options.enforce_from.isoformat()} is not in the future; "
                         "to enforce now, use --to enforce")
    return "warn", "enforce"


def prepare_promotion(options: PromoteOptions, now: dt.datetime) -> Promotion:
    """Check the options, plan the edit (verified against the whole tree) and preview its impact."""
    context = build_context(options.org_config, options.policies, now)
    tree = context.tree
    assert tree is not None
    written_level, previewed = _planned(options, context.today)
    edit = plan_rule_level(tree, context.catalog, options.org_config, options.org, options.rule,
                           written_level, options.enforce_from)
    if edit.changed:
        verify_edit(edit, options.org_config, context.catalog, context.today)
    current = resolve_settings(tree, options.org, context.catalog)[options.rule].level_at(context.today)
    fleet = load_fleet(options.paths, options.inventory, options.cache_dir, options.exclude)
    notes: list[str] = []
    impact = preview(fleet, context, options.org, options.rule, previewed, notes)
    # The evaluation's notes first, as they have always come (they used to be printed as it ran).
    return Promotion(options, now, context.today, current, written_level, edit, impact, context.catalog,
                     [*notes, *fleet.notes])


def apply_promotion(promotion: Promotion) -> bool:
    """Write the edit unless this is a dry run or nothing changes; True when the file was written."""
    if promotion.options.dry_run or not promotion.edit.changed:
        return False
    write_edit(promotion.edit, promotion.options.org_config, promotion.catalog, promotion.today)
    promotion.written = True
    return True
