"""Helpers shared by the output formats: summaries, dates and schedule notes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipewarden.model.finding import Finding


def summary_counts(pipelines: Any, findings: Any) -> dict[str, int]:
    """`summary` of cli.md: enforce/warn count findings that are not excepted."""
    return {
        "pipelines": len(pipelines),
        "files_invalid": sum(1 for p in pipelines if not p.valid),
        "enforce": sum(1 for f in findings if f.level == "enforce" and not f.excepted),
        "warn": sum(1 for f in findings if f.level == "warn" and not f.excepted),
        "excepted": sum(1 for f in findings if f.excepted),
    }


def schedule_note(finding: Finding, today: dt.date) -> str:
    """"enforced from 2027-01-15, in 50 days" for a scheduled warning, else ""."""
    if not finding.enforce_from:
        return ""
    date = dt.date.fromisoformat(finding.enforce_from)
    days = (date - today).days
    return f"enforced from {finding.enforce_from}, in {days} day{'s' if days != 1 else ''}"


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
