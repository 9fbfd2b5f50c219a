"""`rules promote`'s output: the preview of a promotion (text for a person, json for automation)
and the line that says what was written.

Pure functions of a `Promotion` (lint/promote.py). The text preview is printed before the file
is written and the outcome line after; the json document, which says whether the file was
written, after.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from pipewarden.lint.formats.common import enforcement_note, iso_utc
from pipewarden.lint.promote import Promotion
from pipewarden.model.finding import Finding, PipelineSummary


def _level_text(level: str, enforce_from: dt.date | str | None, today: dt.date) -> str:
    return f"{level}, {enforcement_note(enforce_from, today)}" if enforce_from else level


def _names(pipelines: Sequence[PipelineSummary]) -> list[dict[str, str | None]]:
    return [{"pipeline": p.name, "file": p.file} for p in pipelines]


_GROUPS = ("newly_failing", "already_failing", "excepted", "warning", "not_affected", "no_finding")


def render_json(promotion: Promotion) -> str:
    options, impact = promotion.options, promotion.impact
    teams = [
        {"team": t.team, "org": t.org, "pipelines": t.pipelines,
         **{group: _names(getattr(t, group)) for group in _GROUPS},
         "blocked_before": t.blocked_before, "blocked_after": t.blocked_after, "newly_blocked": t.newly_blocked}
        for t in impact.teams
    ]
    data: dict[str, Any] = {
        "version": 1,
        "generated_at": iso_utc(promotion.now),
        "rule": options.rule,
        "org": options.org,
        "file": promotion.edit.file,
        "current": {"level": promotion.current[0], "enforce_from": promotion.current[1]},
        "planned": {"level": promotion.planned_level,
                    "enforce_from": options.enforce_from.isoformat() if options.enforce_from else None},
        "previewed_level": impact.level,
        "changes": list(promotion.edit.changes),
        "dry_run": options.dry_run,
        "written": promotion.written,
        "teams": teams,
        "totals": impact.totals(),
        "newly_blocked": impact.newly_blocked,
        "unaffected": [{"org": org, "level": level} for org, level in impact.unaffected],
        "findings": [f.to_json() for f in impact.findings],
    }
    return json.dumps(data, indent=2) + "\n"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_text(promotion: Promotion) -> str:
    """The preview for a person: the change, a row per team, the pipelines by what the promotion
    does to them, and totals that add up."""
    options, impact, today = promotion.options, promotion.impact, promotion.today
    planned = _level_text(promotion.planned_level, options.enforce_from, today)
    lines = [
        f"Promote {options.rule} in org {options.org} ({promotion.edit.file})",
        f"  now:  {_level_text(promotion.current[0], promotion.current[1], today)}",
        f"  new:  {planned}",
        *(f"  also: {note}" for note in promotion.edit.notes),
        "",
        (f"Impact on the pipelines of {options.org}'s subtree, evaluated {today.isoformat()} "
         f"as if {options.rule} were at {impact.level}:"),
    ]
    if impact.teams:
        rows = [
            [t.team or "(no team)", t.org or "-", t.pipelines, len(t.newly_failing), len(t.already_failing),
             len(t.excepted), len(t.warning), len(t.not_affected),
             ("new" if t.newly_blocked else "yes") if t.blocked_after else "no"]
            for t in impact.teams
        ]
        headers = ["team", "org", "pipelines", "newly failing", "already failing", "excepted", "warn",
                   "not affected", "team blocked"]
        lines += ["", tabulate(rows, headers=headers, stralign="left", numalign="right")]
    else:
        lines.append("  no pipeline of the fleet belongs to this subtree")
    by_file: dict[str, list[Finding]] = {}
    for finding in impact.findings:
        by_file.setdefault(finding.file, []).append(finding)
    sections = (
        ("Newly failing (the promotion makes them fail the check)", "newly_failing"),
        ("Already failing (they fail the check today for other findings; no change)", "already_failing"),
        ("Covered by exceptions (never fail for this rule)", "excepted"),
        ("Would warn", "warning"),
    )
    for title, group in sections:
        pipelines = [p for t in impact.teams for p in getattr(t, group)]
        if not pipelines:
            continue
        lines += ["", f"{title}:"]
        for pipeline in pipelines:
            for finding in by_file.get(pipeline.file, []):
                extra = ""
                if finding.enforce_from:
                    extra = f" ({enforcement_note(finding.enforce_from, today)})"
                if finding.exception is not None:
                    until = "permanently" if finding.exception.permanent else f"until {finding.exception.expires}"
                    extra = f" (excepted by {finding.exception.org} {until}: {finding.exception.reason})"
                who = f"{finding.team or '(no team)'}/{finding.pipeline or '?'}"
                lines.append(f"  {who}  {finding.file}:{finding.line}  {finding.message}{extra}")
    not_affected = [p for t in impact.teams for p in t.not_affected]
    if not_affected:
        lines += ["", f"Not affected (their org sets its own level for {options.rule}):"]
        lines += [f"  {p.team or '(no team)'}/{p.name or '?'}  {p.file}" for p in not_affected]
    totals = impact.totals()
    lines += [
        "",
        totals_line(promotion),
        (f"Teams: {totals['teams_newly_failing']} of {totals['teams']} with a newly failing pipeline; "
         "newly blocked: " + (", ".join(impact.newly_blocked) or "none") + "."),
    ]
    for org, level in impact.unaffected:
        lines.append(f"Not affected: org {org} sets its own level for {options.rule} ({level}).")
    return "\n".join(lines) + "\n"


def totals_line(promotion: Promotion) -> str:
    """`Totals: N pipelines: ...`: the groups of the preview, which add up to N."""
    totals = promotion.impact.totals()
    parts = [f"{totals['newly_failing']} newly failing", f"{totals['already_failing']} already failing",
             f"{totals['excepted']} covered by exceptions", f"{totals['warning']} would warn",
             f"{totals['not_affected']} not affected", f"{totals['no_finding']} without a finding"]
    return f"Totals: {_plural(totals['pipelines'], 'pipeline')}: {', '.join(parts)}."


def outcome_line(promotion: Promotion) -> str:
    edit = promotion.edit
    if not edit.changed:
        return f"Nothing to change: {edit.file} already says so.\n"
    what = "; ".join(edit.changes)
    if promotion.written:
        return f"Wrote {edit.file}: {what}.\n"
    return f"Dry run: would write {edit.file}: {what}; nothing written.\n"
