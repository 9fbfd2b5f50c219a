"""`check --format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Every catalog rule is listed in `tool.driver.rules` (not only those that fired) so that
`ruleIndex` and the rule help stay the same from run to run. Excepted findings stay in the log
as suppressed results: viewers hide them, and the justification remains auditable.

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


def _rule_descriptor(rule: Rule, catalog: Catalog) -> dict[str, Any]:
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
    url = docs_url(rule.id, catalog)
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


def as_dict(result: Result, now: dt.datetime) -> dict[str, Any]:
    today = now.astimezone(dt.UTC).date()
    catalog = result.context.catalog
    rules = sorted(catalog.rules.values(), key=lambda r: r.id)
    index = {rule.id: i for i, rule in enumerate(rules)}
    prints = fingerprints(result.findings)
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pipewarden",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": HOMEPAGE,
                        "rules": [_rule_descriptor(rule, catalog) for rule in rules],
                    }
                },
                "invocations": [{"executionSuccessful": True, "endTimeUtc": iso_utc(now)}],
                "columnKind": "unicodeCodePoints",
                "results": [_result(f, index.get(f.rule), p, today) for f, p in zip(result.findings, prints)],
            }
        ],
    }


def render(
    result: Result, *, now: dt.datetime, fixed: Sequence[Finding] | None = None, fail_on: str = "enforce"
) -> str:
    return log_safe_json(json.dumps(as_dict(result, now), indent=2) + "\n")
