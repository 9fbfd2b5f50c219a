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
from pipewarden.lint.promote import Impact, Promotion
from pipewarden.model.finding import PipelineSummary


def _level_text(level: str, enforce_from: dt.date | str | None, today: dt.date) -> str:
    return f"{level}, {enforcement_note(enforce_from, today)}" if enforce_from else level


def _names(pipelines: Sequence[PipelineSummary]) -> list[dict[str, str | None]]:
    return [{"pipeline": p.name, "file": p.file} for p in pipelines]


def render_json(promotion: Promotion) -> str:
    options, impact = promotion.options, promotion.impact
    teams = [
        {"team": t.team, "org": t.org, "pipelines": t.pipelines, "failing": _names(t.failing),
         "warning": _names(t.warning), "excepted": _names(t.excepted), "blocked_before": t.blocked_before,
         "blocked_after": t.blocked_after, "newly_blocked": t.newly_blocked}
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
        "totals": _totals(impact),
        "newly_blocked": impact.newly_blocked,
        "unaffected": [{"org": org, "level": level} for org, level in impact.unaffected],
        "findings": [f.to_json() for f in impact.findings],
    }
    return json.dumps(data, indent=2) + "\n"


def _totals(impact: Impact) -> dict[str, int]:
    return {
        "pipelines": sum(t.pipelines for t in impact.teams),
        "failing": sum(len(t.failing) for t in impact.teams),
        "warning": sum(len(t.warning) for t in impact.teams),
        "excepted": sum(len(t.excepted) for t in impact.teams),
        "teams": len(impact.teams),
        "teams_failing": sum(1 for t in impact.teams if t.failing),
        "newly_blocked": sum(1 for t in impact.teams if t.newly_blocked),
    }


def render_text(promotion: Promotion) -> str:
    """The preview for a person: the change, a row per team, the pipelines, the totals."""
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
            [t.team or "(no team)", t.org or "-", t.pipelines, len(t.failing), len(t.warning), len(t.excepted),
             "yes" if t.blocked_before else "no",
             ("yes (new)" if t.newly_blocked else "yes") if t.blocked_after else "no"]
            for t in impact.teams
        ]
        headers = ["team", "org", "pipelines", "would fail", "would warn", "excepted", "blocked now", "blocked after"]
        lines += ["", tabulate(rows, headers=headers, stralign="left", numalign="right")]
    else:
        lines.append("  no pipeline of the fleet belongs to this subtree")
    sections = (
        ("Would fail", [f for f in impact.findings if f.level == "enforce" and not f.excepted]),
        ("Would warn", [f for f in impact.findings if f.level == "warn" and not f.excepted]),
        ("Covered by exceptions", [f for f in impact.findings if f.excepted]),
    )
    for title, findings in sections:
        if not findings:
            continue
        lines += ["", f"{title}:"]
        for finding in findings:
            extra = ""
            if finding.enforce_from:
                extra = f" ({enforcement_note(finding.enforce_from, today)})"
            if finding.exception is not None:
                until = "permanently" if finding.exception.permanent else f"until {finding.exception.expires}"
                extra = f" (excepted by {finding.exception.org} {until}: {finding.exception.reason})"
            who = f"{finding.team or '(no team)'}/{finding.pipeline or '?'}"
            lines.append(f"  {who}  {finding.file}:{finding.line}  {finding.message}{extra}")
    totals = _totals(impact)
    lines += [
        "",
        (f"Totals: {totals['failing']} of {totals['pipelines']} pipeline(s) would fail, {totals['warning']} warn, "
         f"{totals['excepted']} excepted; {totals['teams_failing']} of {totals['teams']} team(s) would fail."),
        "Newly blocked teams: " + (", ".join(impact.newly_blocked) or "none"),
    ]
    for org, level in impact.unaffected:
        lines.append(f"Not affected: org {org} sets its own level for {options.rule} ({level}).")
    return "\n".join(lines) + "\n"


def outcome_line(promotion: Promotion) -> str:
    edit = promotion.edit
    if not edit.changed:
        return f"Nothing to change: {edit.file} already says so.\n"
    what = "; ".join(edit.changes)
    if promotion.written:
        return f"Wrote {edit.file}: {what}.\n"
    return f"Dry run: would write {edit.file}: {what}; nothing written.\n"
