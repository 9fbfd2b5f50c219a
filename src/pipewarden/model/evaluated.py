"""One file after the per-document work, and its compact record form.

Records are plain tuples that `marshal` can write: they carry results from worker processes
to the parent and into the cache. Unpickling slotted frozen dataclasses runs Python code per
field (about 50 µs per file, half of it in the parent); marshal plus the constructors costs a
third of that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipewarden.model.finding import AUTOMATION_LEVELS, ExceptionInfo, Finding, PipelineSummary, Violation
from pipewarden.model.pipeline import Invalid


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One file after the per-document work: compact, so that workers can send it back."""

    summary: PipelineSummary
    invalid: Invalid | None
    violations: tuple[Violation, ...]
    # Levels applied by the worker that evaluated the file, and for which context (its id, the
    # same in a forked worker): a caller may apply another context's levels to the same results.
    # Never cached (levels depend on today).
    findings: tuple[Finding, ...] | None = None
    findings_context: int | None = None
    # SHA-256 of the bytes evaluated (see PipelineFile.content_hash); None: not cacheable.
    content_hash: str | None = None
    # Another tool's file (PipelineFile.foreign): the run drops it when discovery found it.
    foreign: bool = False


def to_record(item: Evaluated) -> tuple[Any, ...]:
    """The file's result without its path and without levels (what the cache keeps)."""
    s = item.summary
    invalid = (item.invalid.message, item.invalid.path, item.invalid.line) if item.invalid else None
    violations = tuple((v.rule, v.path, v.message, v.line, v.failed_rule) for v in item.violations)
    return (s.name, s.team, s.org, s.automation_level, s.valid, s.host_paths, s.name_line, s.team_line,
            s.root_line, invalid, violations, item.foreign)


def is_record(value: object) -> bool:
    """Whether `value` has exactly the shape `to_record` gives: checked on what is read back
    from disk (the cache), where a damaged entry must be dropped, not fail later in a report.
    Written out flat: it runs for every cache hit."""
    if type(value) is not tuple or len(value) != 12:
        return False
    name, team, org, level, valid, hosts, name_line, team_line, root_line, invalid, violations, foreign = value
    if not (
        (name is None or type(name) is str)
        and (team is None or type(team) is str)
        and (org is None or type(org) is str)
        and type(level) is str and level in AUTOMATION_LEVELS
        and type(valid) is bool
        and (invalid is None) == valid
        and type(name_line) is int and name_line >= 0
        and type(team_line) is int and team_line >= 0
        and type(root_line) is int and root_line >= 0
        and type(hosts) is tuple
        and type(violations) is tuple
        and type(foreign) is bool and not (foreign and valid)
    ):
        return False
    if invalid is not None:
        if type(invalid) is not tuple or len(invalid) != 3:
            return False
        message, path, line = invalid
        if type(message) is not str or type(path) is not str or type(line) is not int or line < 0:
            return False
    for host in hosts:
        if type(host) is not tuple or len(host) != 3:
            return False
        address, path, line = host
        if type(address) is not str or type(path) is not str or type(line) is not int or line < 0:
            return False
    for violation in violations:
        if type(violation) is not tuple or len(violation) != 5:
            return False
        rule, path, message, line, failed = violation
        if (type(rule) is not str or type(path) is not str or type(message) is not str or type(line) is not int
                or line < 0 or (failed is not None and type(failed) is not str)):
            return False
    return True


def from_record(
    record: tuple[Any, ...] | list[Any], file: str, content_hash: str | None = None,
    findings: Iterable[FindingRecord | list[Any]] | None = None, findings_context: int | None = None,
) -> Evaluated:
    """The result of `to_record`, under the name this run reached the file by; with the
    finding records of a worker's answer when given."""
    name, team, org, level, valid, hosts, name_line, team_line, root_line, invalid, violations, foreign = record
    summary = PipelineSummary(file, name, team, org, level, valid, hosts, name_line, team_line, root_line)
    return Evaluated(
        summary,
        Invalid(*invalid) if invalid is not None else None,
        tuple(Violation(*v) for v in violations),
        tuple(finding_from_record(f, summary) for f in findings) if findings is not None else None,
        findings_context,
        content_hash,
        foreign,
    )


# A finding of a file, without what its summary already says (pipeline, team, org, file):
# (rule, level, line, path, message, excepted, enforce_from, exception fields or None, the rule
# that failed for a `policy-error` finding or None).
FindingRecord = tuple[
    str, str, int, str, str, bool, "str | None", "tuple[str, str, str, str | None, bool] | None", "str | None"
]


def finding_from_record(record: FindingRecord | list[Any], summary: PipelineSummary) -> Finding:
    rule, level, line, path, message, excepted, enforce_from, exception, failed_rule = record
    return Finding(
        rule, level, summary.name, summary.team, summary.org, summary.file, line, path, message, excepted,
        enforce_from, ExceptionInfo(*exception) if exception is not None else None, None, failed_rule,
    )


def to_worker_record(item: Evaluated, findings: tuple[FindingRecord, ...], context: int) -> tuple[Any, ...]:
    """A worker's answer for one file: `to_record` plus the path, the content hash and the
    findings with levels applied (for the context with id `context`)."""
    return (item.summary.file, to_record(item), findings, context, item.content_hash)


def from_worker_record(record: tuple[Any, ...] | list[Any]) -> Evaluated:
    file, base, findings, context, content_hash = record
    return from_record(base, file, content_hash, findings, context)
