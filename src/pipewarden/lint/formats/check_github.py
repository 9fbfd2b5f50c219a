"""`check --format github`: GitHub Actions workflow commands that annotate the pull request.

Findings that fail the check are `::error`, other warnings `::warning`, excepted findings
`::notice`. A scheduled warning stays a `::warning` (it is one today) with the date in its
message, and each scheduled rule also gets one run-level `::notice` announcing the date:
one per rule rather than one per finding, because GitHub shows only the first few annotations
of each kind per step and a repeated notice would push real findings out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.ci_common import exception_note
from pipewarden.lint.formats.common import schedule_note, summary_counts
from pipewarden.lint.formats.escape import github_data, github_property, visible
from pipewarden.model.finding import Finding

_BREAKS = "\r\n"


def command(kind: str, message: str, **properties: str | int) -> str:
    """One workflow command on one line. Line breaks in the text are the runner's escapes
    (`%0A`), so no text can start a line, let alone a command, of its own; other control
    characters (a terminal escape, a bidirectional override) are shown as escapes."""
    props = ",".join(f"{key}={github_property(visible(str(value), keep=_BREAKS))}" for key, value in properties.items())
    data = github_data(visible(message, keep=_BREAKS))
    return f"::{kind} {props}::{data}" if props else f"::{kind}::{data}"


def annotation(finding: Finding, today: dt.date, fail_on: str = "enforce") -> str:
    location: dict[str, str | int] = {"file": finding.file, "line": max(1, finding.line), "title": finding.rule}
    if finding.excepted:
        return command("notice", f"{finding.message} ({exception_note(finding)})", **location)
    note = schedule_note(finding, today)
    message = f"{finding.message} ({note})" if note else finding.message
    return command("error" if finding.blocks(fail_on) else "warning", message, **location)


def schedule_notices(findings: tuple[Finding, ...], today: dt.date) -> list[str]:
    """One notice per scheduled rule (and date): when its warnings start to fail the check."""
    scheduled: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        if finding.enforce_from and not finding.excepted:
            scheduled.setdefault((finding.rule, finding.enforce_from), []).append(finding)
    lines = []
    for (rule, date), group in sorted(scheduled.items()):
        count = len(group)
        noun = "finding" if count == 1 else "findings"
        lines.append(
            command(
                "notice",
                f"{rule} is {schedule_note(group[0], today)}: {count} {noun} here will then fail this check",
                title=f"{rule} enforced from {date}",
            )
        )
    return lines


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    today = now.astimezone(dt.UTC).date()
    lines = [annotation(f, today, fail_on) for f in result.findings]
    lines.extend(schedule_notices(result.findings, today))
    counts = summary_counts(result.pipelines, result.findings)
    summary = (
        f"pipewarden: {counts['pipelines']} pipeline(s) checked, {counts['files_invalid']} invalid; "
        f"{counts['enforce']} enforce, {counts['warn']} warn, {counts['excepted']} excepted"
    )
    if fixed is not None:
        # Like the markdown comment: excepted findings are counted apart, not as new or existing.
        counted = [f for f in result.findings if not f.excepted]
        new = sum(1 for f in counted if f.change == "new")
        summary += f"; {new} new, {len(counted) - new} existing, {len(fixed)} fixed"
    lines.append(summary)
    return "\n".join(lines) + "\n"
