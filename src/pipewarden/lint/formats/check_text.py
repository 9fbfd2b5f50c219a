"""`check --format text`: findings grouped by file, `file:line  level  rule  message`.

What people and CI logs read (the GitHub Action prints it to the job log): every line is shown
through `visible`, so a name holding a line break or a terminal escape prints as `\\n` or
`\\x1b` and cannot start a line of its own, and through `log_line`, so that no line can read as
a workflow command (`::error` at its start, `##[error]` anywhere). Messages and reasons longer
than `MAX_TEXT` characters are cut with an ellipsis (`--format json` has them whole).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import groupby

from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.common import schedule_note, summary_counts
from pipewarden.lint.formats.escape import clip, log_line, visible
from pipewarden.model.finding import Finding

MAX_TEXT = 1000


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    today = now.astimezone(dt.UTC).date()
    # The project config the options came from, so that a log says which settings applied.
    lines: list[str] = [log_line(visible(f"config: {result.config}"))] if result.config is not None else []
    for file, group in groupby(result.findings, key=lambda f: f.file):
        lines.append(log_line(visible(file)))
        for finding in group:
            level = "excepted" if finding.excepted else finding.level
            note = schedule_note(finding, today)
            extra = f" ({note})" if note else ""
            if finding.change:
                extra += f" [{finding.change}]"
            if finding.exception is not None:
                extra += f" (exception: {clip(finding.exception.reason, MAX_TEXT)})"
            lines.append(log_line(visible(
                f"  {finding.file}:{finding.line}  {level:<8} {finding.rule}  {clip(finding.message, MAX_TEXT)}{extra}"
            )))
        lines.append("")
    if fixed:
        lines.append(f"fixed by this change: {len(fixed)}")
        for finding in fixed:
            lines.append(log_line(visible(f"  {finding.file}  {finding.rule}  {clip(finding.message, MAX_TEXT)}")))
        lines.append("")
    counts = summary_counts(result.pipelines, result.findings)
    # The verdict is the exit code's: with --fail-on warn, warnings fail too.
    verdict = "FAILED" if any(f.blocks(fail_on) for f in result.findings) else "passed"
    lines.append(
        f"{verdict}: {counts['pipelines']} pipeline(s) checked, {counts['files_invalid']} invalid; "
        f"{counts['enforce']} enforce, {counts['warn']} warn, {counts['excepted']} excepted"
    )
    return "\n".join(lines) + "\n"
