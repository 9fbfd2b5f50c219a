"""`check --format markdown`: the pull-request comment.

Written for a reviewer with ten seconds: the verdict first, then what this change introduced,
then what will start blocking soon; findings that were already there, excepted ones and fixed
ones are folded or last. The first line is a hidden marker so that a bot can find and update
its one comment instead of adding another on every push. GitHub rejects comments longer than
65,536 characters, so tables are cut ("... and N more") and cut harder until the whole comment
fits under `MAX_CHARS`, whatever the number of findings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.ci_common import HOMEPAGE, docs_url, exception_note
from pipewarden.lint.formats.common import iso_utc, schedule_note, summary_counts
from pipewarden.lint.formats.escape import ELLIPSIS, clip, markdown_inline, visible
from pipewarden.model.finding import Finding
from pipewarden.policy.catalog import Catalog

MARKER = "<!-- pipewarden-report -->"
MAX_CHARS = 65_000
MAX_CELL = 300
# Rows shown per section before "... and N more"; halved until the comment fits.
ROW_LIMITS = {"new": 100, "existing": 50, "excepted": 25, "fixed": 50}


def cell(text: str, limit: int = MAX_CELL) -> str:
    """Text safe inside a table cell: one line, markdown and HTML inert, not too long."""
    return markdown_inline(clip(" ".join(text.split()), limit))


def code(text: str, limit: int = 120) -> str:
    """A path in a code span (the start of a long one cut); one line, control characters shown
    as escapes, `|` escaped for the table."""
    if len(text) > limit:
        text = ELLIPSIS + text[-(limit - 1) :]
    if "`" in text:
        return cell(text, limit)
    return "`" + visible(text).replace("|", "\\|") + "`"


def rule_link(rule: str, catalog: Catalog, base: str | None = None) -> str:
    url = docs_url(rule, catalog, base)
    if not url:
        return code(rule)
    # Parentheses would end the link's destination early: a custom rule's URL comes from its METADATA.
    return f"[{code(rule)}]({url.replace('(', '%28').replace(')', '%29').replace(' ', '%20')})"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class _View:
    """What the comment shows, computed once; rendering then only varies the row limits."""

    result: Result
    fixed: tuple[Finding, ...] | None
    today: dt.date
    now: dt.datetime
    fail_on: str
    docs_base: str | None = None

    @property
    def catalog(self) -> Catalog:
        return self.result.context.catalog

    def link(self, rule: str) -> str:
        return rule_link(rule, self.catalog, self.docs_base)

    @property
    def open_findings(self) -> list[Finding]:
        return [f for f in self.result.findings if not f.excepted]

    def ordered(self, findings: Sequence[Finding]) -> list[Finding]:
        # Blocking first, then the ones that will block soon, then by place in the file.
        return sorted(findings, key=lambda f: (not f.blocks(self.fail_on), f.enforce_from is None, f.sort_key()))


# What fails the check, per --fail-on, as the comment's footer says it.
_FAILS_ON = {"enforce": "enforce", "warn": "warn or enforce", "new": "new enforce findings"}


def _verdict(view: _View) -> str:
    blocking = [f for f in view.result.findings if f.blocks(view.fail_on)]
    levels = {"enforce": "enforce", "new": "enforce, new"}.get(view.fail_on, "warn or enforce")
    if blocking:
        detail = ""
        if view.fixed is not None:
            new = sum(1 for f in blocking if f.change == "new")
            parts = [
                f"{new} new" if new else "",
                f"{len(blocking) - new} already on the base branch" if new < len(blocking) else "",
            ]
            detail = f" ({', '.join(p for p in parts if p)})"
        return f"### ❌ Blocks merge: {_plural(len(blocking), 'finding')} at {levels}{detail}"
    existing = [f for f in view.open_findings if f.level == "enforce"]
    if existing:  # --fail-on new: enforce findings the change did not introduce
        return (f"### ✅ Does not block merge: no new enforce finding "
                f"({_plural(len(existing), 'enforce finding')} already on the base branch)")
    warnings = [f for f in view.open_findings if f.level == "warn"]
    if warnings:
        return f"### ✅ Does not block merge: {_plural(len(warnings), 'warning')} to look at"
    excepted = len(view.result.findings) - len(view.open_findings)
    if excepted:
        return f"### ✅ Does not block merge: nothing to fix ({_plural(excepted, 'excepted finding')})"
    return "### ✅ Does not block merge: no findings"


def _counts(view: _View) -> str:
    counts = summary_counts(view.result.pipelines, view.result.findings)
    parts = [
        f"**{counts['pipelines']}** pipeline file{'' if counts['pipelines'] == 1 else 's'}",
        f"**{counts['enforce']}** enforce",
        f"**{counts['warn']}** warn",
        f"**{counts['excepted']}** excepted",
    ]
    if counts["files_invalid"]:
        parts.insert(1, f"**{counts['files_invalid']}** invalid")
    if view.fixed is not None:
        new = sum(1 for f in view.open_findings if f.change == "new")
        parts += [f"**{new}** new", f"**{len(view.open_findings) - new}** existing", f"**{len(view.fixed)}** fixed"]
    return " · ".join(parts)


def _schedule_notes(view: _View) -> list[str]:
    scheduled: dict[tuple[str, str], list[Finding]] = {}
    for finding in view.open_findings:
        if finding.enforce_from:
            scheduled.setdefault((finding.rule, finding.enforce_from), []).append(finding)
    if not scheduled:
        return []
    lines = ["> ⏰ **Enforcement coming.** These warnings will block merges:"]
    for (rule, _), group in sorted(scheduled.items(), key=lambda item: (item[0][1], item[0][0])):
        new = sum(1 for f in group if f.change == "new")
        extra = f", {new} new" if view.fixed is not None and new else ""
        lines.append(
            f"> - {view.link(rule)}: {schedule_note(group[0], view.today)} "
            f"({_plural(len(group), 'finding')} here{extra})"
        )
    return lines


def _more(total: int, shown: int) -> list[str]:
    return [f"_... and {total - shown} more_", ""] if total > shown else []


def _finding_table(view: _View, findings: list[Finding], limit: int) -> list[str]:
    lines = ["| level | rule | location | message |", "| --- | --- | --- | --- |"]
    for finding in findings[:limit]:
        level = f"🔴 **{finding.level}**" if finding.blocks(view.fail_on) else f"🟡 {finding.level}"
        note = schedule_note(finding, view.today)
        message = cell(finding.message) + (f" ⏰ _{cell(note)}_" if note else "")
        lines.append(
            f"| {level} | {view.link(finding.rule)} | {code(f'{finding.file}:{finding.line}')} | {message} |"
        )
    return lines + [""] + _more(len(findings), limit)


def _excepted_table(view: _View, findings: list[Finding], limit: int) -> list[str]:
    lines = ["| rule | location | message | exception |", "| --- | --- | --- | --- |"]
    for finding in findings[:limit]:
        lines.append(
            f"| {view.link(finding.rule)} | {code(f'{finding.file}:{finding.line}')} "
            f"| {cell(finding.message)} | {cell(exception_note(finding))} |"
        )
    return lines + [""] + _more(len(findings), limit)


def _fixed_table(view: _View, findings: Sequence[Finding], limit: int) -> list[str]:
    lines = ["| rule | file | message |", "| --- | --- | --- |"]
    for finding in findings[:limit]:
        lines.append(f"| {view.link(finding.rule)} | {code(finding.file)} | {cell(finding.message)} |")
    return lines + [""] + _more(len(findings), limit)


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "</details>", ""]


def _compose(view: _View, limits: dict[str, int]) -> str:
    lines = [MARKER, _verdict(view), "", _counts(view), ""]
    notes = _schedule_notes(view)
    if notes:
        lines += [*notes, ""]
    open_findings = view.ordered(view.open_findings)
    if view.fixed is None:
        if open_findings:
            lines += [f"#### Findings ({len(open_findings)})", "", *_finding_table(view, open_findings, limits["new"])]
    else:
        new = [f for f in open_findings if f.change == "new"]
        existing = [f for f in open_findings if f.change != "new"]
        if new:
            lines += [f"#### New findings ({len(new)})", "", *_finding_table(view, new, limits["new"])]
        else:
            lines += ["This change introduces no new findings.", ""]
        if existing:
            lines += _details(
                f"Existing findings ({len(existing)}): already on the base branch, not introduced by this change",
                _finding_table(view, existing, limits["existing"]),
            )
    excepted = view.ordered([f for f in view.result.findings if f.excepted])
    if excepted:
        lines += _details(
            f"Excepted findings ({len(excepted)}): covered by an approved exception, never blocking",
            _excepted_table(view, excepted, limits["excepted"]),
        )
    if view.fixed:
        lines += [
            f"#### 🎉 Fixed by this change ({len(view.fixed)})",
            "",
            "Thank you! These findings are gone:",
            "",
            *_fixed_table(view, view.fixed, limits["fixed"]),
        ]
    lines.append(
        f"<sub>[pipewarden]({HOMEPAGE}) · evaluated {iso_utc(view.now)} · "
        f"fails on {_FAILS_ON.get(view.fail_on, view.fail_on)} · rule names link to their docs</sub>"
    )
    return "\n".join(lines) + "\n"


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    view = _View(result, tuple(fixed) if fixed is not None else None, now.astimezone(dt.UTC).date(), now, fail_on,
                 docs_url)
    limits = dict(ROW_LIMITS)
    text = _compose(view, limits)
    while len(text) > MAX_CHARS and any(limits.values()):
        limits = {key: value // 2 for key, value in limits.items()}
        text = _compose(view, limits)
    if len(text) > MAX_CHARS:
        # Only reachable with thousands of scheduled rules; keep the verdict and say so.
        cut = "\n\n_... comment cut at 65,000 characters; run `pipewarden check` for the full report_\n"
        text = text[: MAX_CHARS - len(cut)] + cut
    return text
