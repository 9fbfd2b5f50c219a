"""`check --format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Every catalog rule is listed in `tool.driver.rules` (not only those that fired) so that
`ruleIndex` and the rule help stay the same from run to run, with its docs page as `helpUri`:
under `--docs-url` for the built-in rules, the METADATA's `related_resources` link for an
organisation's own. Excepted findings stay in the log as suppressed results: viewers hide them,
and the justification remains auditable. A check with more than 25,000 results is split into
several runs (see MAX_RESULTS_PER_RUN).

Artifact URIs are RFC 3986 references that decode back to the path as given (`escape.file_uri`):
a relative path stays relative, percent-encoded where needed (`env%3Aprod/pipeline.yaml`), and an
absolute one is a `file:` URI. Plain-text messages that could read as embedded links are escaped
(`escape.sarif_text`); `help.markdown` is the rule author's markdown, as in the rule docs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from pipewarden import __version__
from pipewarden.evaluation.result import Result
from pipewarden.lint.formats.ci_common import HOMEPAGE, docs_url, exception_note
from pipewarden.lint.formats.common import iso_utc, schedule_note
from pipewarden.lint.formats.escape import file_uri, log_safe_json, sarif_text
from pipewarden.model.finding import Finding
from pipewarden.model.fingerprint import fingerprints
from pipewarden.policy.catalog import Catalog
from pipewarden.policy.rule import Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "pipewardenFinding/v1"
_LEVELS = {"enforce": "error", "warn": "warning", "off": "none"}


def _pascal(rule_id: str) -> str:
    # SARIF suggests a readable identifier for `name`; the kebab-case id stays in `id`.
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _rule_descriptor(rule: Rule, catalog: Catalog, docs_base: str | None = None) -> dict[str, Any]:
    help_text = "\n\n".join(part for part in (rule.rationale, rule.remediation) if part) or rule.title
    help_markdown = (
        "\n\n".join(
            part
            for part in (
                f"**Why.** {rule.rationale}" if rule.rationale else "",
                f"**How to fix.** {rule.remediation}" if rule.remediation else "",
            )
            if part
        )
        or rule.title
    )
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": _pascal(rule.id),
        "shortDescription": {"text": sarif_text(rule.title)},
        "fullDescription": {"text": sarif_text(rule.description or rule.title)},
        "help": {"text": sarif_text(help_text), "markdown": help_markdown},
        "defaultConfiguration": {"level": _LEVELS.get(rule.level, "warning")},
        "properties": {"tags": ["pipeline", "release-practice"], "kind": rule.kind},
    }
    url = docs_url(rule.id, catalog, docs_base)
    if url is not None:
        descriptor["helpUri"] = url
    return descriptor


def _uri(file: str) -> str:
    # The file as given (relative stays relative, which is what code scanning resolves against
    # the checkout), as a valid URI reference; see the module's docstring.
    return file_uri(file)


def _result(finding: Finding, index: int | None, fingerprint: str, today: dt.date) -> dict[str, Any]:
    note = schedule_note(finding, today)
    message = f"{finding.message} ({note})" if note else finding.message
    properties: dict[str, Any] = {
        "pipeline": finding.pipeline,
        "team": finding.team,
        "org": finding.org,
        "path": finding.path,
        "effectiveLevel": finding.level,
    }
    if finding.enforce_from:
        properties["enforceFrom"] = finding.enforce_from
        properties["enforcedInDays"] = (dt.date.fromisoformat(finding.enforce_from) - today).days
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": _LEVELS.get(finding.level, "warning"),
        "message": {"text": sarif_text(message)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(finding.file)},
                    "region": {"startLine": max(1, finding.line)},
                },
                "logicalLocations": [{"fullyQualifiedName": finding.path or "(document)", "kind": "member"}],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
        "properties": properties,
    }
    if index is not None:
        result["ruleIndex"] = index
    if finding.change is not None:
        properties["change"] = finding.change
        result["baselineState"] = "new" if finding.change == "new" else "unchanged"
    if finding.excepted and finding.exception is not None:
        result["suppressions"] = [
            {
                # No `status`/`state`: the published 2.1.0 schema and its errata disagree on the
                # name, and an external suppression already means "accepted elsewhere".
                "kind": "external",
                "justification": exception_note(finding),
                "properties": finding.exception.to_json(),
            }
        ]
    return result


# GitHub code scanning rejects a SARIF file with a run of more than 25,000 results or with more
# than 20 runs (docs: "SARIF results exceed hard limit"), and, since July 2025, one with two runs
# of the same tool and category. A larger check is split into runs of at most 25,000 results:
# the first has no `automationDetails` (so it takes the category of the upload, as an unsplit log
# does), each later one its own category, `pipewarden/part-N/`. Past 20 runs the least severe
# results are left out, and every run says so.
MAX_RESULTS_PER_RUN = 25_000
MAX_RUNS = 20
PART_ID = "pipewarden/part-{part}/"
# Indented JSON goes through the pure-Python encoder: large logs are compact (also smaller to
# upload; code scanning takes at most 10 MB gzipped), small ones stay readable.
INDENT_LIMIT = 2000
_SEVERITY = {"enforce": 0, "warn": 1}


def _parts(findings: Sequence[Finding]) -> tuple[list[range | list[int]], int]:
    """The indices of the findings in each run, in the findings' order (file, line, rule), and
    how many findings were left out."""
    total = len(findings)
    kept: range | list[int] = range(total)
    limit = MAX_RESULTS_PER_RUN * MAX_RUNS
    if total > limit:
        # Excepted findings first out, then warnings; what stays keeps its order.
        ranked = sorted(kept, key=lambda i: (findings[i].excepted, _SEVERITY.get(findings[i].level, 2)))
        kept = sorted(ranked[:limit])
    parts = [kept[start : start + MAX_RESULTS_PER_RUN] for start in range(0, len(kept), MAX_RESULTS_PER_RUN)]
    return parts or [range(0)], total - len(kept)


def limit_note(count: int) -> str | None:
    """What `check` says on stderr when a SARIF log of `count` results is split or cut, else None."""
    if count <= MAX_RESULTS_PER_RUN:
        return None
    limit = MAX_RESULTS_PER_RUN * MAX_RUNS
    runs = min(MAX_RUNS, -(-count // MAX_RESULTS_PER_RUN))
    note = (f"SARIF: {count:,} results in {runs} runs of at most {MAX_RESULTS_PER_RUN:,} (GitHub code scanning's "
            f"limit per run); runs 2 to {runs} have their own category (pipewarden/part-N)")
    if count > limit:
        note += (f"; {count - limit:,} results left out (excepted ones first, then warnings): GitHub takes at most "
                 f"{MAX_RUNS} runs per file; check fewer files per upload")
    return note


def _notifications(part: int, parts: int, first: int, size: int, total: int, left_out: int) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    if parts > 1:
        notes.append({
            "level": "note",
            "message": {"text": (
                f"This log holds {total - left_out:,} results in {parts} runs of at most {MAX_RESULTS_PER_RUN:,} "
                f"(GitHub code scanning's limit per run); this run, part {part} of {parts}, has results "
                f"{first + 1:,} to {first + size:,}, in file order."
            )},
        })
    if left_out:
        notes.append({
            "level": "warning",
            "message": {"text": (
                f"{left_out:,} of {total:,} results are left out of this log (excepted ones first, then "
                f"warnings): GitHub code scanning takes at most {MAX_RUNS} runs of {MAX_RESULTS_PER_RUN:,} "
                "results per file. Check fewer files per upload, or read `pipewarden check --format json`."
            )},
        })
    return notes


def as_dict(result: Result, now: dt.datetime, docs_base: str | None = None) -> dict[str, Any]:
    today = now.astimezone(dt.UTC).date()
    catalog = result.context.catalog
    rules = sorted(catalog.rules.values(), key=lambda r: r.id)
    index = {rule.id: i for i, rule in enumerate(rules)}
    findings = result.findings
    prints = fingerprints(findings)
    # One list of rule descriptors, shared by every run (each run is complete: tool and rules).
    descriptors = [_rule_descriptor(rule, catalog, docs_base) for rule in rules]
    parts, left_out = _parts(findings)
    runs = []
    first = 0
    for number, indices in enumerate(parts, start=1):
        invocation: dict[str, Any] = {"executionSuccessful": True, "endTimeUtc": iso_utc(now)}
        notes = _notifications(number, len(parts), first, len(indices), len(findings), left_out)
        if notes:
            invocation["toolExecutionNotifications"] = notes
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": "pipewarden",
                    "version": __version__,
                    "semanticVersion": __version__,
                    "informationUri": HOMEPAGE,
                    "rules": descriptors,
                }
            },
            "invocations": [invocation],
            "columnKind": "unicodeCodePoints",
            "results": [_result(findings[i], index.get(findings[i].rule), prints[i], today) for i in indices],
        }
        if number > 1:
            run["automationDetails"] = {
                "id": PART_ID.format(part=number),
                "description": {"text": f"pipewarden results, part {number} of {len(parts)}"},
            }
        if len(parts) > 1 or left_out:
            run["properties"] = {"part": number, "parts": len(parts), "resultsTotal": len(findings),
                                 "resultsLeftOut": left_out}
        runs.append(run)
        first += len(indices)
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": runs}


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce",
    docs_url: str | None = None,
) -> str:
    log = as_dict(result, now, docs_url)
    indent = 2 if len(result.findings) <= INDENT_LIMIT else None
    return log_safe_json(json.dumps(log, indent=indent) + "\n")
