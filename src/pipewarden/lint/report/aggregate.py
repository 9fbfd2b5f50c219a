"""The leaders' report (cli.md, `report`): team and org rows, failing rules, automation, exceptions.

Pure computation over one evaluation `Result` and the fleet's repositories: no I/O, no clock
(the time comes in as `now`). Everything is aggregated in one pass over the pipelines and one
over the findings, with dicts, so a fleet of 10,000 repositories costs little next to its
evaluation; team rows are never computed by evaluating again.

Compliance follows cli.md literally: for every pipeline file, the pairs are the rules at `warn`
or `enforce` today for the org of the pipeline's team (`valid-definition` included), whatever
the pipeline contains. A rule that does not apply to a pipeline (a prod-only rule on a pipeline
without prod stages) finds nothing, so its pair passes. An invalid file fails all of its pairs.
A `policy-error` finding is no pair of its own but fails the pair of the rule that errored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.common import iso_utc
from pipewarden.lint.report.history import RowSnapshot, RunRecord
from pipewarden.model.automation import lowest_level
from pipewarden.model.finding import AUTOMATION_LEVELS, Finding, PipelineSummary
from pipewarden.model.fleet import Repo
from pipewarden.orgs.resolve import exception_status
from pipewarden.orgs.tree import OrgException, OrgTree
from pipewarden.policy.builtin import POLICY_ERROR

TEAM_KEYS = ("team", "org", "repos", "pipelines", "automation_level", "passing", "enforce", "warn", "excepted",
             "compliance")
ORG_KEYS = ("org", "parent", "teams", "repos", "pipelines", "passing", "enforce", "warn", "excepted", "compliance")
RULE_KEYS = ("rule", "pipelines_failing", "enforce", "warn")
DELTA_KEYS = ("compliance_delta", "findings_delta")
EXCEPTION_STATUSES = ("active", "expiring", "expired")
EXPIRING_DAYS = 30


def percentage(passed: int, total: int) -> float | None:
    """`passed/total` as a percentage rounded half up to one decimal (not to even: 6.25 -> 6.3)."""
    if total == 0:
        return None
    value = (Decimal(passed) * 100 / Decimal(total)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


@dataclass
class Counts:
    """The additive numbers of a row; compliance is derived from the pair counts."""

    repos: int = 0
    pipelines: int = 0
    invalid: int = 0
    passing: int = 0
    enforce: int = 0
    warn: int = 0
    excepted: int = 0
    pairs: int = 0
    pairs_passed: int = 0

    def add(self, other: Counts) -> None:
        self.repos += other.repos
        self.pipelines += other.pipelines
        self.invalid += other.invalid
        self.passing += other.passing
        self.enforce += other.enforce
        self.warn += other.warn
        self.excepted += other.excepted
        self.pairs += other.pairs
        self.pairs_passed += other.pairs_passed

    @property
    def compliance(self) -> float | None:
        return percentage(self.pairs_passed, self.pairs)

    @property
    def findings(self) -> int:
        """Findings that need attention: enforce and warn, not excepted (what history compares)."""
        return self.enforce + self.warn


@dataclass
class Deltas:
    """Change since the previous recorded run; None when there is nothing to compare with."""

    compliance: float | None = None
    findings: int | None = None
    previous: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"compliance_delta": self.compliance, "findings_delta": self.findings}


@dataclass
class TeamRow:
    team: str | None
    org: str
    counts: Counts = field(default_factory=Counts)
    levels: list[str] = field(default_factory=list)
    pipelines: list[PipelineSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    deltas: Deltas = field(default_factory=Deltas)

    @property
    def automation_level(self) -> str:
        return lowest_level(self.levels)

    def to_json(self, with_deltas: bool = False) -> dict[str, Any]:
        c = self.counts
        row: dict[str, Any] = {
            "team": self.team, "org": self.org, "repos": c.repos, "pipelines": c.pipelines,
            "automation_level": self.automation_level, "passing": c.passing, "enforce": c.enforce,
            "warn": c.warn, "excepted": c.excepted, "compliance": c.compliance,
        }
        if with_deltas:
            row.update(self.deltas.to_json())
        return row


@dataclass
class OrgRow:
    org: str
    parent: str | None
    depth: int
    teams: int = 0
    counts: Counts = field(default_factory=Counts)
    deltas: Deltas = field(default_factory=Deltas)

    def to_json(self, with_deltas: bool = False) -> dict[str, Any]:
        c = self.counts
        row: dict[str, Any] = {
            "org": self.org, "parent": self.parent, "teams": self.teams, "repos": c.repos,
            "pipelines": c.pipelines, "passing": c.passing, "enforce": c.enforce, "warn": c.warn,
            "excepted": c.excepted, "compliance": c.compliance,
        }
        if with_deltas:
            row.update(self.deltas.to_json())
        return row


@dataclass(frozen=True)
class RuleRow:
    rule: str
    pipelines_failing: int
    enforce: int
    warn: int

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "pipelines_failing": self.pipelines_failing, "enforce": self.enforce,
                "warn": self.warn}


@dataclass
class OrgReport:
    """Everything every report format shows; `scope` is the `--org` node (the root by default)."""

    generated_at: dt.datetime
    today: dt.date
    root: str
    scope: str
    teams: list[TeamRow]
    orgs: list[OrgRow]
    rules: list[RuleRow]
    automation: dict[str, dict[str, int]]
    exceptions: dict[str, list[OrgException]]
    notes: list[str] = field(default_factory=list)
    history: bool = False
    previous_run: RunRecord | None = None

    def exceptions_json(self, status: str) -> list[OrgException]:
        """JSON lists: `active` is every exception in force today (org-config.md's meaning),
        so it includes the `expiring` ones; tables show each exception once, with its status."""
        if status == "active":
            both = self.exceptions["active"] + self.exceptions["expiring"]
            return sorted(both, key=lambda e: (e.expires or dt.date.max, e.org, e.rule))
        return self.exceptions[status]

    @property
    def total(self) -> OrgRow:
        """The scope's own row: totals over everything the report covers."""
        return self.orgs[0]

    def to_json(self) -> dict[str, Any]:
        """Exactly the shape of cli.md; delta keys are added only when history is in use."""
        return {
            "version": 1,
            "generated_at": iso_utc(self.generated_at),
            "teams": [t.to_json(self.history) for t in self.teams],
            "orgs": [o.to_json(self.history) for o in self.orgs],
            "rules": [r.to_json() for r in self.rules],
            "automation": {level: dict(v) for level, v in self.automation.items()},
            "exceptions": {status: [e.to_json() for e in self.exceptions_json(status)] for status in EXCEPTION_STATUSES},
        }


@dataclass
class _FileStats:
    enforce: int = 0
    warn: int = 0
    excepted: int = 0
    failing: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)


def build_report(
    result: Result, repos: Sequence[Repo] | None, now: dt.datetime, scope: str | None = None
) -> OrgReport:
    """Aggregate one evaluation into the report of `scope` (the root when None).

    `repos` are the inventory's repositories; None means no inventory, and then every pipeline
    file counts as one repository (cli.md).
    """
    tree = result.context.tree
    if tree is None:
        raise ValueError("a report needs an org tree")
    scope = scope or tree.root
    if scope not in tree.nodes:
        raise ValueError(f"unknown org {scope!r}")
    if repos is None:
        repos = [Repo(s.name or s.file, None, s.file) for s in result.pipelines]
    rows, notes = _team_rows(tree, result.pipelines, repos)
    _count(rows.values(), _file_stats(result.findings), _CountedRules(result))
    in_scope = set(tree.subtree(scope))
    team_rows = sorted((r for r in rows.values() if r.org in in_scope), key=lambda r: (r.team is None, r.team or ""))
    return OrgReport(
        generated_at=now,
        today=result.context.today,
        root=tree.root,
        scope=scope,
        teams=team_rows,
        orgs=_org_rows(tree, scope, rows.values()),
        rules=_rule_rows(team_rows),
        automation=_automation(team_rows),
        exceptions=_exceptions(tree, scope, team_rows, result.context.today),
        notes=notes,
    )


def _team_rows(
    tree: OrgTree, pipelines: Sequence[PipelineSummary], repos: Sequence[Repo]
) -> tuple[dict[str | None, TeamRow], list[str]]:
    """A row per declared team, plus one per unknown team with a pipeline; repositories placed in them."""
    rows: dict[str | None, TeamRow] = {}
    for node_name in _preorder(tree, tree.root):
        for declared in tree.nodes[node_name].teams:
            rows[declared] = TeamRow(declared, node_name)
    summaries = {s.file: s for s in pipelines}
    # Pipeline files first: they create the rows of unknown teams (which belong to the root).
    for repo in repos:
        if repo.file is None:
            continue
        summary = summaries.get(repo.file)
        team = _team_of(repo, summary)
        row = rows.get(team)
        if row is None:
            row = rows[team] = TeamRow(team, tree.root)
        row.counts.repos += 1
        if summary is not None:
            row.pipelines.append(summary)
    # A repository without a pipeline counts only for a team that has a row (cli.md creates rows
    # for unknown teams only when they have a pipeline); the rest are reported, not dropped silently.
    notes: list[str] = []
    for repo in repos:
        if repo.file is not None:
            continue
        row = rows.get(repo.team) if repo.team is not None else None
        if row is None:
            where = f"{repo.where}: " if repo.where else ""
            why = "names no team" if repo.team is None else f"names the team {repo.team!r}, which is in no org node"
            notes.append(f"{where}repository {repo.name!r} has no pipeline and {why}; it is not counted")
            continue
        row.counts.repos += 1
    return rows, notes


def _file_stats(findings: Iterable[Finding]) -> dict[str, _FileStats]:
    """One pass over the findings: counts and failing rules per pipeline file."""
    stats: dict[str, _FileStats] = {}
    for finding in findings:
        s = stats.get(finding.file)
        if s is None:
            s = stats[finding.file] = _FileStats()
        s.findings.append(finding)
        if finding.excepted:
            s.excepted += 1
            continue
        # A rule that failed while it ran fails its own pair (policy-error has none).
        s.failing.add(finding.failed_rule if finding.rule == POLICY_ERROR.id and finding.failed_rule else finding.rule)
        if finding.level == "enforce":
            s.enforce += 1
        elif finding.level == "warn":
            s.warn += 1
    return stats


def _count(rows: Iterable[TeamRow], stats: Mapping[str, _FileStats], counted: _CountedRules) -> None:
    """Fill each team row's counts and pairs from its pipelines' file stats."""
    empty = _FileStats()
    for row in rows:
        rules_here = counted.of(row.org)
        c = row.counts
        for summary in row.pipelines:
            s = stats.get(summary.file, empty)
            c.pipelines += 1
            row.levels.append(summary.automation_level)
            row.findings.extend(s.findings)
            c.enforce += s.enforce
            c.warn += s.warn
            c.excepted += s.excepted
            c.pairs += len(rules_here)
            if summary.valid:
                c.pairs_passed += len(rules_here) - len(s.failing & rules_here)
                c.passing += s.enforce == 0
            else:
                c.invalid += 1  # an invalid file fails every pair


def _rule_rows(teams: Iterable[TeamRow]) -> list[RuleRow]:
    files: dict[str, set[str]] = {}
    levels: dict[str, list[int]] = {}
    for row in teams:
        for finding in row.findings:
            if finding.excepted:
                continue
            files.setdefault(finding.rule, set()).add(finding.file)
            counts = levels.setdefault(finding.rule, [0, 0])
            counts[0 if finding.level == "enforce" else 1] += 1
    return sorted(
        (RuleRow(rule, len(failing), levels[rule][0], levels[rule][1]) for rule, failing in files.items()),
        key=lambda r: (-r.pipelines_failing, -r.enforce, -r.warn, r.rule),
    )


def _automation(teams: Iterable[TeamRow]) -> dict[str, dict[str, int]]:
    automation = {level: {"teams": 0, "pipelines": 0} for level in AUTOMATION_LEVELS}
    for row in teams:
        automation[row.automation_level]["teams"] += 1
        for summary in row.pipelines:
            automation[summary.automation_level]["pipelines"] += 1
    return automation


def _team_of(repo: Repo, summary: PipelineSummary | None) -> str | None:
    if summary is not None and summary.valid and summary.team is not None:
        return summary.team
    if repo.team is not None:
        return repo.team
    return summary.team if summary is not None else None


class _CountedRules:
    """The rules at warn or enforce today for each org, computed once per org."""

    def __init__(self, result: Result) -> None:
        self._context = result.context
        self._cache: dict[str, frozenset[str]] = {}

    def of(self, org: str) -> frozenset[str]:
        rules = self._cache.get(org)
        if rules is None:
            today = self._context.today
            settings = self._context.settings(org)
            rules = frozenset(
                rule for rule, s in settings.items()
                if s.level_at(today)[0] in ("warn", "enforce") and rule != POLICY_ERROR.id
            )
            self._cache[org] = rules
        return rules


def _preorder(tree: OrgTree, start: str) -> list[str]:
    """Nodes of `start`'s subtree, each parent before its children, children by name."""
    order: list[str] = []
    todo = [start]
    while todo:
        current = todo.pop()
        order.append(current)
        todo.extend(sorted(tree.children.get(current, ()), reverse=True))
    return order


def _org_rows(tree: OrgTree, scope: str, teams: Iterable[TeamRow]) -> list[OrgRow]:
    """One row per node of the scope's subtree with totals over that node's own subtree."""
    order = _preorder(tree, scope)
    depth = {scope: 0}
    rows: dict[str, OrgRow] = {}
    for name in order:
        parent = tree.nodes[name].parent
        if name != scope:
            depth[name] = depth[parent or scope] + 1
        rows[name] = OrgRow(name, parent, depth[name])
    for team in teams:
        row = rows.get(team.org)
        if row is not None:
            row.teams += 1
            row.counts.add(team.counts)
    for name in reversed(order):  # children before parents: roll the totals up
        parent = tree.nodes[name].parent
        if name != scope and parent in rows:
            rows[parent].teams += rows[name].teams
            rows[parent].counts.add(rows[name].counts)
    return [rows[name] for name in order]


def _exceptions(tree: OrgTree, scope: str, teams: Sequence[TeamRow], today: dt.date) -> dict[str, list[OrgException]]:
    """Exceptions granted in the scope's subtree, and those of its ancestors that cover its teams or pipelines."""
    in_scope = set(tree.subtree(scope))
    ancestors = {n.name for n in tree.chain(scope)[:-1]}
    team_names = {t.team for t in teams if t.team is not None}
    pipeline_names = {p.name for t in teams for p in t.pipelines if p.name is not None}
    found: dict[str, list[OrgException]] = {status: [] for status in EXCEPTION_STATUSES}
    for node in _preorder(tree, tree.root):
        for exception in tree.nodes[node].exceptions:
            if node in in_scope or (node in ancestors and _covers(exception, team_names, pipeline_names)):
                found[exception_status(exception, today, EXPIRING_DAYS)].append(exception)
    for items in found.values():
        items.sort(key=lambda e: (e.expires or dt.date.max, e.org, e.rule))
    return found


def _covers(exception: OrgException, teams: set[str], pipelines: set[str]) -> bool:
    return bool(teams.intersection(exception.teams) or pipelines.intersection(exception.pipelines))


def apply_previous(report: OrgReport, previous: Mapping[tuple[str, str | None], RowSnapshot],
                   run: RunRecord | None) -> None:
    """Set each row's change since its latest recorded state (`previous`, keyed by kind and name)."""
    report.history = True
    report.previous_run = run
    for kind, name, counts, deltas in _rows(report):
        before = previous.get((kind, name))
        if before is None:
            continue
        deltas.previous = True
        now_compliance = counts.compliance
        if now_compliance is not None and before.compliance is not None:
            deltas.compliance = round(now_compliance - before.compliance, 1)
        deltas.findings = counts.findings - (before.enforce + before.warn)


def _rows(report: OrgReport) -> list[tuple[str, str | None, Counts, Deltas]]:
    return [("team", t.team, t.counts, t.deltas) for t in report.teams] + [
        ("org", o.org, o.counts, o.deltas) for o in report.orgs
    ]


def to_run_record(report: OrgReport) -> RunRecord:
    """What the history store keeps of a report: totals, and every team and org row."""
    owners = {t.team: t.org for t in report.teams}
    snapshots = []
    for kind, name, counts, _ in _rows(report):
        org = owners.get(name, report.root) if kind == "team" else name
        snapshots.append(RowSnapshot(kind, name, org, counts.repos, counts.pipelines, counts.passing, counts.enforce,
                                     counts.warn, counts.excepted, counts.compliance))
    total = report.total.counts
    return RunRecord(
        None, iso_utc(report.generated_at), report.scope, len(report.teams), total.repos, total.pipelines,
        total.passing, total.enforce, total.warn, total.excepted, total.compliance, tuple(snapshots),
    )
