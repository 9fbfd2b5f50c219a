"""`check --format text`: findings grouped by file, `file:line  level  rule  message`."""

from __future__ import annotations

import datetime as dt
from itertools import groupby
from typing import Any

from pipewarden.reports.common import schedule_note, summary_counts


def render(result: Any, now: dt.datetime, fixed: Any = None, fail_on: str = "enforce", **_: Any) -> str:
    today = now.astimezone(dt.UTC).date()
    lines: list[str] = []
    for file, group in groupby(result.findings, key=lambda f: f.file):
        lines.append(file)
        for finding in group:
            level = "excepted" if finding.excepted else finding.level
            note = schedule_note(finding, today)
            extra = f" ({note})" if note else ""
            if finding.change:
                extra += f" [{finding.change}]"
            if finding.exception is not None:
                extra += f" (exception: {finding.exception.reason})"
            lines.append(f"  {finding.file}:{finding.line}  {level:<8} {finding.rule}  {finding.message}{extra}")
        lines.append("")
    if fixed:
        lines.append(f"fixed by this change: {len(fixed)}")
        for finding in fixed:
            lines.append(f"  {finding.file}  {finding.rule}  {finding.message}")
        lines.append("")
    counts = summary_counts(result.pipelines, result.findings)
    # The verdict is the exit code's: with --fail-on warn, warnings fail too.
    verdict = "FAILED" if any(f.blocks(fail_on) for f in result.findings) else "passed"
    lines.append(
        f"{verdict}: {counts['pipelines']} pipeline(s) checked, {counts['files_invalid']} invalid; "
        f"{counts['enforce']} enforce, {counts['warn']} warn, {counts['excepted']} excepted"
    )
    return "\n".join(lines) + "\n"
