"""Helpers shared by the output formats: summaries, dates and schedule notes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pipewarden.model.finding import Finding, PipelineSummary


def summary_counts(pipelines: Sequence[PipelineSummary], findings: Sequence[Finding]) -> dict[str, int]:
    """`summary` of cli.md: enforce/warn count findings that are not excepted."""
    return {
        "pipelines": len(pipelines),
        "files_invalid": sum(1 for p in pipelines if not p.valid),
        "enforce": sum(1 for f in findings if f.level == "enforce" and not f.excepted),
        "warn": sum(1 for f in findings if f.level == "warn" and not f.excepted),
        "excepted": sum(1 for f in findings if f.excepted),
    }


def enforcement_note(date: dt.date | str, today: dt.date) -> str:
    """"enforced from 2027-01-15, in 50 days": the words every output uses for a schedule
    ("since then" once the date has come, which only `rules list` shows)."""
    day = dt.date.fromisoformat(date) if isinstance(date, str) else date
    days = (day - today).days
    when = f"in {days} day{'s' if days != 1 else ''}" if days > 0 else "since then"
    return f"enforced from {day.isoformat()}, {when}"


def schedule_note(finding: Finding, today: dt.date) -> str:
    """The enforcement note of a scheduled warning, else ""."""
    return enforcement_note(finding.enforce_from, today) if finding.enforce_from else ""


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
