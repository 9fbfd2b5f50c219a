"""`check --format junit`: JUnit XML, for CI systems that show test results (GitLab, Jenkins, ...).

One testsuite per pipeline file and one testcase per (pipeline, rule at warn or enforce for that
pipeline's org), so a pipeline's compliance reads as a test report: findings that fail the check
are `<failure>`s; warnings and excepted findings go to `<system-out>` and the testcase passes.
Rules that could not run because the file is invalid are `<skipped>`: nothing was checked.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence

from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.ci_common import exception_note
from pipewarden.lint.formats.common import schedule_note
from pipewarden.lint.formats.escape import log_safe_xml, xml_text
from pipewarden.model.finding import Finding, PipelineSummary

# XML 1.0 cannot hold most control characters, even escaped, and a name or a message quoting a
# binary file could contain them: every text from a pipeline, config or path goes through
# `_clean`, which shows them as escapes (`\x1b`) instead.
_clean = xml_text


def _active_rules(summary: PipelineSummary, context: EvalContext) -> list[str]:
    settings = context.settings(context.node_of(summary.team))
    active = [rule for rule, s in settings.items() if s.level_at(context.today)[0] in ("warn", "enforce")]
    if context.tree is None:
        # Without org configs no team can be unknown; a testcase for it would say nothing.
        active = [rule for rule in active if rule != "unknown-team"]
    return active


def _line(finding: Finding, today: dt.date) -> str:
    level = "excepted" if finding.excepted else finding.level
    extra = [note for note in (schedule_note(finding, today), exception_note(finding)) if note]
    if finding.change:
        extra.append(finding.change)
    suffix = f" ({'; '.join(extra)})" if extra else ""
    return f"{level}: {finding.file}:{finding.line}: {finding.message}{suffix}"


def _testcase(
    suite: ET.Element, summary: PipelineSummary, rule: str, findings: list[Finding], today: dt.date, fail_on: str
) -> tuple[bool, bool]:
    """Add one testcase; returns (failed, skipped)."""
    # The suite's name is the file, cleaned once for all of its testcases.
    file = suite.attrib["name"]
    classname = _clean(summary.name) if summary.name else file
    case = ET.SubElement(suite, "testcase", {"classname": classname, "name": rule, "file": file, "time": "0"})
    failing = [f for f in findings if f.blocks(fail_on)]
    passing = [f for f in findings if not f.blocks(fail_on)]
    if failing:
        failure = ET.SubElement(case, "failure", {"message": _clean(failing[0].message), "type": failing[0].level})
        failure.text = _clean("\n".join(_line(f, today) for f in failing))
    elif not summary.valid and rule != "valid-definition":
        ET.SubElement(case, "skipped", {"message": "not checked: the file is not a valid pipeline definition"})
        return False, True
    if passing:
        out = ET.SubElement(case, "system-out")
        out.text = _clean("\n".join(_line(f, today) for f in passing))
    return bool(failing), False


def _suite(
    root: ET.Element, summary: PipelineSummary, findings: list[Finding], context: EvalContext, now: dt.datetime, fail_on: str
) -> tuple[int, int, int]:
    suite = ET.SubElement(root, "testsuite", {"name": _clean(summary.file)})
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("pipeline", summary.name),
        ("team", summary.team),
        ("org", summary.org),
        ("automation_level", summary.automation_level),
    ):
        if value is not None:
            ET.SubElement(properties, "property", {"name": key, "value": _clean(value)})
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    rules = sorted(set(_active_rules(summary, context)) | set(by_rule))
    failures = skipped = 0
    for rule in rules:
        failed, skip = _testcase(suite, summary, rule, by_rule.get(rule, []), context.today, fail_on)
        failures += failed
        skipped += skip
    suite.attrib.update(
        {
            "tests": str(len(rules)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "time": "0",
            "timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    return len(rules), failures, skipped


def _by_file(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.file, []).append(finding)
    return grouped


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    root = ET.Element("testsuites", {"name": "pipewarden"})
    grouped = _by_file(result.findings)
    totals = [0, 0, 0]
    for summary in result.pipelines:
        counts = _suite(root, summary, grouped.get(summary.file, []), result.context, now, fail_on)
        totals = [a + b for a, b in zip(totals, counts)]
    root.attrib.update(
        {
            "tests": str(totals[0]),
            "failures": str(totals[1]),
            "errors": "0",
            "skipped": str(totals[2]),
            "time": "0",
        }
    )
    ET.indent(root)
    return log_safe_xml('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
