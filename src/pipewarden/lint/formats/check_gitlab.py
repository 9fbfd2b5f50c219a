"""`check --format gitlab`: a GitLab Code Quality report (a JSON list of issues).

GitLab compares the report of a merge request with that of its target branch by
`fingerprint`, so the fingerprint must not move with line numbers: it hashes the same key as
`--base` matching. `location.path` is a path, not a URI (JSON escapes whatever it holds), as
given but in the form GitLab's format asks for: `/`-separated and without a leading `./`. Run from
the repository root with relative paths so that GitLab can place the issues in the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from typing import Any

from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.ci_common import exception_note
from pipewarden.lint.formats.common import schedule_note
from pipewarden.lint.formats.escape import log_safe_json
from pipewarden.model.finding import Finding
from pipewarden.model.fingerprint import fingerprints


def severity(finding: Finding, fail_on: str = "enforce") -> str:
    if finding.excepted:
        return "info"
    return "major" if finding.blocks(fail_on) else "minor"


def repo_path(file: str) -> str:
    """`./services/a/pipeline.yaml` -> `services/a/pipeline.yaml` (GitLab: "do not prefix with ./")."""
    path = file.replace(os.sep, "/") if os.sep != "/" else file
    while path.startswith("./"):
        path = path[2:]
    return path


def _description(finding: Finding, today: dt.date) -> str:
    notes = [note for note in (schedule_note(finding, today), exception_note(finding)) if note]
    suffix = f" ({'; '.join(notes)})" if notes else ""
    return f"{finding.rule}: {finding.message}{suffix}"


def as_list(result: Result, now: dt.datetime, fail_on: str = "enforce") -> list[dict[str, Any]]:
    today = now.astimezone(dt.UTC).date()
    return [
        {
            "description": _description(finding, today),
            "check_name": finding.rule,
            "fingerprint": fingerprint,
            "severity": severity(finding, fail_on),
            "location": {"path": repo_path(finding.file), "lines": {"begin": max(1, finding.line)}},
        }
        for finding, fingerprint in zip(result.findings, fingerprints(result.findings))
    ]


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    return log_safe_json(json.dumps(as_list(result, now, fail_on), indent=2) + "\n")
