"""Findings: what a rule found, where, and how it counts once levels and exceptions apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEVELS = ("off", "warn", "enforce")
AUTOMATION_LEVELS = ("none", "manual", "partial", "full")

# Violations, findings and summaries are values: never changed once made (make a changed copy
# with dataclasses.replace). They are not declared frozen because a frozen dataclass sets each
# field through object.__setattr__, which made building one seven times slower, and a fleet has
# hundreds of thousands of them. Being mutable, they are deliberately not hashable: none can
# sit in a set or be a dict key and then be changed under it.


@dataclass(slots=True)
class Violation:
    """What a rule reports about one document, before levels apply."""

    rule: str
    path: str
    message: str
    line: int
    # For a `policy-error` violation: the id of the rule that failed while it ran.
    failed_rule: str | None = None


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """The exception that covers a finding, as shown in reports."""

    org: str
    reason: str
    approved_by: str
    expires: str | None
    permanent: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "reason": self.reason,
            "approved_by": self.approved_by,
            "expires": self.expires,
            "permanent": self.permanent,
        }


@dataclass(slots=True)
class Finding:
    """One finding with its effective level now; the unit every output format shows."""

    rule: str
    level: str
    pipeline: str | None
    team: str | None
    org: str | None
    file: str
    line: int
    path: str
    message: str
    excepted: bool = False
    enforce_from: str | None = None
    exception: ExceptionInfo | None = None
    change: str | None = None
    # For a `policy-error` finding: the id of the rule that failed (not part of the JSON: the
    # message names it); the report counts the failure against that rule's pair.
    failed_rule: str | None = None

    def sort_key(self) -> tuple[str, int, str, str, str]:
        return (self.file, self.line, self.rule, self.path, self.message)

    def blocks(self, fail_on: str = "enforce") -> bool:
        """Does this finding fail a check at `--fail-on` `fail_on`? Excepted findings never do;
        `enforce` findings do, `warn` ones too with `warn`; with `new` (and `--base`) only the
        `enforce` findings the change introduced do."""
        if self.excepted:
            return False
        if fail_on == "new":
            return self.level == "enforce" and self.change == "new"
        return self.level == "enforce" or (fail_on == "warn" and self.level == "warn")

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "level": self.level,
            "excepted": self.excepted,
            "pipeline": self.pipeline,
            "team": self.team,
            "org": self.org,
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "enforce_from": self.enforce_from,
            "exception": self.exception.to_json() if self.exception else None,
            "change": self.change,
        }


@dataclass(slots=True)
class PipelineSummary:
    """One checked pipeline file as listed in reports."""

    file: str
    name: str | None
    team: str | None
    org: str | None
    automation_level: str
    valid: bool
    host_paths: tuple[tuple[str, str, int], ...] = field(default=(), compare=False)
    name_line: int = 1
    team_line: int = 1
    root_line: int = 1  # the document root's line, where `policy-error` findings point

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "team": self.team,
            "org": self.org,
            "file": self.file,
            "automation_level": self.automation_level,
        }
