"""`check --format json`: exactly the shape of cli.md."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pipewarden.reports.common import iso_utc, summary_counts


def as_dict(result: Any, now: dt.datetime, fixed: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "generated_at": iso_utc(now),
        "pipelines": [p.to_json() for p in result.pipelines],
        "findings": [f.to_json() for f in result.findings],
        "summary": summary_counts(result.pipelines, result.findings),
    }
    if fixed is not None:
        data["fixed"] = [f.to_json() for f in fixed]
    return data


# Indented JSON goes through the pure-Python encoder, about ten times slower than the C one:
# large fleets get compact JSON (machines read it), small runs stay readable.
INDENT_LIMIT = 2000


def render(result: Any, now: dt.datetime, fixed: Any = None, **_: Any) -> str:
    if len(result.findings) <= INDENT_LIMIT:
        return json.dumps(as_dict(result, now, fixed), indent=2) + "\n"
    # Large runs: encode one item at a time, so the dicts of 500,000 findings never exist at
    # once (about half the peak memory of a 50,000-pipeline check). Same JSON, compact.
    encode = json.JSONEncoder().encode
    parts = [
        '{"version": 1, "generated_at": ', encode(iso_utc(now)),
        ', "pipelines": [', ", ".join(encode(p.to_json()) for p in result.pipelines),
        '], "findings": [', ", ".join(_finding_json(f, encode) for f in result.findings),
        '], "summary": ', encode(summary_counts(result.pipelines, result.findings)),
    ]
    if fixed is not None:
        parts += [', "fixed": [', ", ".join(encode(f.to_json()) for f in fixed), "]"]
    parts.append("}\n")
    return "".join(parts)


def _finding_json(finding: Any, encode: Any) -> str:
    """`encode(finding.to_json())`, written out: a third of the time for 500,000 findings.

    Same keys, same order, same escaping (a test compares both encodings)."""
    text = _string
    exception = "null" if finding.exception is None else encode(finding.exception.to_json())
    return (
        f'{{"rule": {text(finding.rule)}, "level": {text(finding.level)}, '
        f'"excepted": {"true" if finding.excepted else "false"}, "pipeline": {_nullable(finding.pipeline)}, '
        f'"team": {_nullable(finding.team)}, "org": {_nullable(finding.org)}, "file": {text(finding.file)}, '
        f'"line": {int(finding.line)}, "path": {text(finding.path)}, "message": {text(finding.message)}, '
        f'"enforce_from": {_nullable(finding.enforce_from)}, "exception": {exception}, '
        f'"change": {_nullable(finding.change)}}}'
    )


_string = json.encoder.encode_basestring_ascii


def _nullable(value: str | None) -> str:
    return "null" if value is None else str(_string(value))
