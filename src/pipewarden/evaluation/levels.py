"""Violations -> findings: levels, schedules and exceptions, the one place they are applied.

A rule never knows whether it warns or blocks: what it reports becomes a finding here, at the
level the pipeline's org sets today (or its schedule), covered or not by an exception. Workers
apply levels to the files they evaluated (`document_finding_records`); `to_findings` does the
rest (cached files, the fleet rules) and makes the run's `Result`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from operator import attrgetter

from pipewarden.evaluation.bulk import gc_paused
from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.fleet import fleet_violations
from pipewarden.evaluation.result import Result
from pipewarden.model.evaluated import Evaluated, FindingRecord, finding_from_record
from pipewarden.model.finding import Finding, Violation
from pipewarden.model.fingerprint import expired_note
from pipewarden.orgs.resolve import RuleSetting, find_exception, recently_expired_exception
from pipewarden.policy.builtin import POLICY_ERROR


def to_findings(evaluated: list[Evaluated], context: EvalContext, notes: Sequence[str] = ()) -> Result:
    """Apply levels, schedules and exceptions, the one place they are applied.

    Workers already did this for the files they evaluated (`Evaluated.findings`); files served
    from the cache are done here. The fleet-wide rule's findings are always added here. `notes`
    are the run's notes so far (see `Result.notes`).
    """
    with gc_paused():
        return _to_findings(evaluated, context, tuple(notes))


def _to_findings(evaluated: list[Evaluated], context: EvalContext, notes: tuple[str, ...]) -> Result:
    fleet = fleet_violations(evaluated, context)
    findings: list[Finding] = []
    for item in evaluated:
        if item.findings is not None and item.findings_context == id(context):
            findings.extend(item.findings)
        else:
            findings.extend(document_findings(item, context))
        if item.summary.file in fleet:
            findings.extend(apply_levels(item, fleet[item.summary.file], context))
    findings.sort(key=attrgetter("file", "line", "rule", "path", "message"))
    return Result(tuple(e.summary for e in evaluated), tuple(findings), context, notes)


def _unknown_team(evaluated: Evaluated, context: EvalContext) -> Violation | None:
    summary = evaluated.summary
    if context.tree is None or evaluated.invalid is not None or summary.team is None:
        return None
    if context.tree.node_for_team(summary.team) is not None:
        return None
    nearest = nearest_teams(summary.team, context.tree.team_nodes)
    if nearest:
        guess = " or ".join(repr(team) for team in nearest)
        advice = f"did you mean {guess}? Fix metadata.team, or add the team to an org's 'teams'"
    else:
        advice = "add it to an org's 'teams' or fix metadata.team"
    return Violation("unknown-team", "metadata.team", f"team {summary.team!r} is in no org node; {advice}", 0)


def nearest_teams(team: str, declared: Iterable[str]) -> list[str]:
    """The declared teams a mistyped `team` most likely means: those equal to it but for case
    (`Cart` for `cart`), else up to three close spellings (`chekout` for `checkout`)."""
    teams = sorted(declared)
    folded = team.casefold()
    same_but_case = [t for t in teams if t.casefold() == folded]
    if same_but_case:
        return same_but_case
    by_fold: dict[str, list[str]] = {}
    for t in teams:
        by_fold.setdefault(t.casefold(), []).append(t)
    close = difflib.get_close_matches(folded, list(by_fold), n=3, cutoff=0.75)
    return [t for fold in close for t in by_fold[fold]][:3]


def document_findings(item: Evaluated, context: EvalContext) -> list[Finding]:
    """The findings of one file's own violations (not the fleet rule's), levels applied."""
    return [finding_from_record(r, item.summary) for r in document_finding_records(item, context)]


def document_finding_records(item: Evaluated, context: EvalContext) -> list[FindingRecord]:
    """`document_findings` as records (what a worker sends; see model.evaluated)."""
    summary = item.summary
    if item.invalid is not None:
        invalid = item.invalid
        return [("valid-definition", "enforce", invalid.line, invalid.path, invalid.message, False, None, None, None)]
    violations = list(item.violations)
    unknown = _unknown_team(item, context)
    if unknown is not None:
        violations.append(Violation(unknown.rule, unknown.path, unknown.message, summary.team_line))
    return _level_records(item, violations, context)


def apply_levels(item: Evaluated, violations: Iterable[Violation], context: EvalContext) -> list[Finding]:
    """Violations -> findings: the effective level now, the schedule, the covering exception."""
    return [finding_from_record(r, item.summary) for r in _level_records(item, violations, context)]


def _level_records(item: Evaluated, violations: Iterable[Violation], context: EvalContext) -> list[FindingRecord]:
    summary = item.summary
    node = context.node_of(summary.team)
    settings = context.settings(node)
    findings: list[FindingRecord] = []
    for violation in violations:
        if violation.rule == POLICY_ERROR.id:
            record = _policy_error_record(violation, settings, context)
            if record is not None:
                findings.append(record)
            continue
        setting = settings.get(violation.rule)
        if setting is None:
            continue
        key = (node, violation.rule)
        if key not in context._levels:
            context._levels[key] = setting.level_at(context.today)
        level, enforce_from = context._levels[key]
        if level == "off":
            continue
        exception = None
        message = violation.message
        if context.tree is not None and node is not None and violation.rule in context.excepted_rules():
            granted = find_exception(context.tree, node, violation.rule, summary.name, summary.team, context.today)
            if granted is not None:
                exception = (
                    granted.org, granted.reason, granted.approved_by,
                    granted.expires.isoformat() if granted.expires else None, granted.permanent,
                )
            else:
                # A finding back because its exception ran out says so for a month, in every format
                # (finding_key leaves the note out: the finding keeps its identity).
                lapsed = recently_expired_exception(context.tree, node, violation.rule, summary.name,
                                                    summary.team, context.today)
                if lapsed is not None and lapsed.expires is not None:
                    message = f"{message}{expired_note(lapsed.expires.isoformat())}"
        findings.append((violation.rule, level, violation.line, violation.path, message,
                         exception is not None, enforce_from, exception, None))
    return findings


def _policy_error_record(
    violation: Violation, settings: dict[str, RuleSetting], context: EvalContext
) -> FindingRecord | None:
    """A rule that failed while it ran: always `enforce`, never excepted, whatever the org
    configs say about `policy-error` (cli.md). None when the failed rule is off under these
    settings: it would not have run (a promotion preview applies the settings from before the
    promotion to the same evaluation)."""
    failed = violation.failed_rule
    setting = settings.get(failed) if failed is not None else None
    if failed is not None and (setting is None or setting.level_at(context.today)[0] == "off"):
        return None
    return (POLICY_ERROR.id, "enforce", violation.line, violation.path, violation.message, False, None, None, failed)
