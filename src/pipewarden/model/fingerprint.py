"""Finding identity that survives edits elsewhere in a file.

Lines move whenever someone adds a stage or a comment above a finding, so identity never uses
the line: it is (rule, pipeline name or file, path without list positions, message). List
positions go too because adding a stage renumbers every later one (`stages[2]` becomes
`stages[3]`); the messages name the stage, synthetic or host, so they still tell findings
apart, and repeats are matched by count. `--base` matches findings with this key, and the
SARIF and GitLab reports hash it so that code-scanning alerts keep their history.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pipewarden.model.finding import Finding

FindingKey = tuple[str, str, str, str]


_POSITION = re.compile(r"\[\d+\]")
# The note a finding carries for a month after the exception that covered it expired: not part
# of its identity, so the finding is the same one before, during and after the note.
_EXPIRED_NOTE = re.compile(r" \(exception expired on \d{4}-\d{2}-\d{2}\)$")


def expired_note(date: str) -> str:
    """What a finding's message ends with when its exception expired on `date` (YYYY-MM-DD)."""
    return f" (exception expired on {date})"


def finding_key(finding: Finding) -> FindingKey:
    """What makes two findings "the same" across revisions of a file."""
    message = _EXPIRED_NOTE.sub("", finding.message)
    return (finding.rule, finding.pipeline or finding.file, _POSITION.sub("[]", finding.path), message)


def fingerprints(findings: Iterable[Finding]) -> list[str]:
    """A stable hex fingerprint per finding, in order, unique within the list.

    Identical keys (the same rule firing twice at the same path with the same message, or two
    files sharing a pipeline name) get an occurrence number mixed in, so consumers that collapse
    equal fingerprints (GitLab, GitHub code scanning) still see every finding.
    """
    seen: dict[FindingKey, int] = {}
    prints: list[str] = []
    for finding in findings:
        key = finding_key(finding)
        occurrence = seen.get(key, 0) + 1
        seen[key] = occurrence
        text = "\x1f".join((*key, str(occurrence)))
        prints.append(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32])
    return prints
