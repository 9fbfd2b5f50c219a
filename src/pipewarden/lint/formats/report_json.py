"""`report --format json`: exactly the keys of cli.md (plus the delta keys with --history)."""

from __future__ import annotations

import json

from pipewarden.lint.formats.escape import log_safe_json
from pipewarden.lint.report.aggregate import OrgReport


def render(report: OrgReport, *, by: str = "team") -> str:
    # Both `teams` and `orgs` are always present, whatever `--by` says: the keys are fixed.
    # `##[` is written `##\\u005b` (the same string) so that printing it to a CI log is harmless.
    return log_safe_json(json.dumps(report.to_json(), indent=2) + "\n")
