"""Load one pipeline file: safe YAML, the schema, then the checks a schema cannot express."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipewarden.errors import LoadError
from pipewarden.load.validate import Issue, finite_issues, first_issue, schema_issues
from pipewarden.load.yamlsafe import ParsedYaml, parse_yaml_bytes, read_limited
from pipewarden.model.paths import join_key
from pipewarden.model.pipeline import Invalid, PipelineFile

SCHEMA = "pipeline"


def load_pipeline(file: str, display: str | None = None) -> PipelineFile:
    """Load and validate `file`; never raises for bad content (it becomes `invalid`)."""
    shown = display or file
    try:
        data = read_limited(file)
    except LoadError as error:
        return PipelineFile(shown, None, {}, _invalid(error))
    return load_pipeline_bytes(shown, data)


def load_pipeline_bytes(display: str, data: bytes) -> PipelineFile:
    """Same as `load_pipeline` for content read elsewhere (for instance from a git ref)."""
    content_hash = hashlib.sha256(data).hexdigest()
    try:
        parsed = parse_yaml_bytes(data)
    except LoadError as error:
        return PipelineFile(display, None, {}, _invalid(error), content_hash=content_hash)
    return validate_pipeline(display, parsed, content_hash)


def _invalid(error: LoadError) -> Invalid:
    """pipeline.md: a YAML syntax error at the line where the parser noticed it, a limit at
    the line that breaks it, "line 1 when the file cannot be read or decoded at all"."""
    return Invalid(error.message, error.path, 1 if error.unparseable else (error.line or 1))


def validate_pipeline(file: str, parsed: ParsedYaml, content_hash: str | None = None) -> PipelineFile:
    document = parsed.value
    if is_foreign(document):
        # Decided on the parse made anyway, before any schema work: discovery skips such a file,
        # so a fleet with other tools' files pays nothing more for them.
        return PipelineFile(file, document, parsed.lines, _foreign_invalid(document, parsed),
                            content_hash=content_hash, foreign=True)
    # The document goes to the Rego engine as JSON anyway: serialising it here, once, is also
    # the fastest check that it holds no .inf/.nan (JSON has none; finding their paths is slower).
    try:
        json_text: str | None = json.dumps(document, allow_nan=False)
        issues = schema_issues(SCHEMA, document)
    except ValueError:
        json_text = None
        issues = schema_issues(SCHEMA, document) + finite_issues(document)
    except TypeError:  # keys that are not strings: the schema rejects them
        json_text = None
        issues = schema_issues(SCHEMA, document)
    if not issues:
        issues = list(semantic_issues(document))
    else:
        # The reported error is the one on the lowest line, so a reference error above a type
        # error must count too; semantic checks assume valid shapes, so keep what they find
        # before they trip over a malformed part.
        issues.extend(_semantic_issues_so_far(document))
    if issues:
        issue, line = first_issue(parsed, issues)
        return PipelineFile(file, document, parsed.lines, Invalid(issue.message, issue.path, line),
                            content_hash=content_hash)
    return PipelineFile(file, document, parsed.lines, json_text=json_text, content_hash=content_hash)


def is_foreign(document: Any) -> bool:
    """Does this loaded document belong to another tool (cli.md)? A mapping with neither
    `apiVersion` nor `kind`, or whose `apiVersion` does not start with `pipewarden/`. A mapping
    with `kind` but no `apiVersion` is a pipewarden file with an error; anything that is not a
    mapping is pipewarden's to report."""
    if type(document) is not dict:
        return False
    if "apiVersion" not in document:
        return "kind" not in document
    version = document["apiVersion"]
    return not (isinstance(version, str) and version.startswith("pipewarden/"))


def _foreign_invalid(document: dict[str, Any], parsed: ParsedYaml) -> Invalid:
    """Why another tool's file is no pipewarden pipeline: what a file named on the command line
    reports."""
    fix = "a pipewarden pipeline starts with 'apiVersion: pipewarden/v1' and 'kind: Pipeline'"
    if "apiVersion" in document:
        return Invalid(f"apiVersion {document['apiVersion']!r} is not pipewarden's, so this looks like another "
                       f"tool's file; {fix}", "apiVersion", parsed.line_of("apiVersion"))
    return Invalid(f"the file has neither apiVersion nor kind, so it looks like another tool's file "
                   f"(Buildkite, Concourse ...); {fix}", "", parsed.line_of(""))


def _semantic_issues_so_far(document: Any) -> list[Issue]:
    found: list[Issue] = []
    try:
        found.extend(semantic_issues(document))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        pass
    return found


@cache
def is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def semantic_issues(doc: dict[str, Any]) -> Iterator[Issue]:
    """What the schema cannot say: references, uniqueness, timezones, the canary's place."""
    windows: dict[str, Any] = doc.get("windows", {})
    alarms: dict[str, Any] = doc.get("alarms", {})
    for name, window in windows.items():
        if not is_timezone(window["timezone"]):
            yield Issue(
                join_key(join_key("windows", name), "timezone"),
                f"window {name!r} has the unknown timezone {window['timezone']!r}; "
                "use an IANA name such as Europe/Berlin or UTC",
            )
    synthetic_names: set[str] = set()
    for i, synthetic in enumerate(doc.get("synthetics", [])):
        if synthetic["name"] in synthetic_names:
            yield Issue(f"synthetics[{i}].name", f"synthetic name {synthetic['name']!r} is used twice")
        synthetic_names.add(synthetic["name"])
    yield from _metric_issues(doc, synthetic_names)
    stage_names: set[str] = set()
    target_names: set[str] = set()
    first_prod = next((i for i, s in enumerate(doc["stages"]) if s["type"] == "prod"), None)
    for i, stage in enumerate(doc["stages"]):
        at = f"stages[{i}]"
        if stage["name"] in stage_names:
            yield Issue(f"{at}.name", f"stage name {stage['name']!r} is used twice; stage names must be unique")
        stage_names.add(stage["name"])
        for j, target in enumerate(stage["targets"]):
            if target["name"] in target_names:
                yield Issue(
                    f"{at}.targets[{j}].name",
                    f"target name {target['name']!r} is used twice; target names must be unique in the pipeline",
                )
            target_names.add(target["name"])
            for k, host in enumerate(target["hosts"]):
                port = int(host.rsplit(":", 1)[1])
                if not 1 <= port <= 65535:
                    yield Issue(f"{at}.targets[{j}].hosts[{k}]", f"host {host!r} has a port outside 1-65535")
        if "window" in stage and stage["window"] not in windows:
            yield Issue(f"{at}.window", f"stage {stage['name']!r} names the undefined window {stage['window']!r}; "
                        f"define it under 'windows'")
        seen_alarms: set[str] = set()
        for j, alarm in enumerate(stage.get("alarms", [])):
            if alarm not in alarms:
                yield Issue(f"{at}.alarms[{j}]", f"stage {stage['name']!r} names the undefined alarm {alarm!r}; "
                            f"define it under 'alarms'")
            if alarm in seen_alarms:
                yield Issue(f"{at}.alarms[{j}]", f"stage {stage['name']!r} lists the alarm {alarm!r} twice")
            seen_alarms.add(alarm)
        if stage.get("canary") is True and i != first_prod:
            yield Issue(f"{at}.canary", f"stage {stage['name']!r} cannot be the canary: only the first prod stage can")


def _metric_issues(doc: dict[str, Any], synthetic_names: set[str]) -> Iterator[Issue]:
    """Metric references to synthetics must name a defined synthetic."""
    references: list[tuple[str, Any]] = [(join_key(join_key("alarms", n), "metric"), a["metric"]) for n, a in doc.get("alarms", {}).items()]
    for i, stage in enumerate(doc["stages"]):
        datapoints = stage.get("bake", {}).get("datapoints", {})
        for side in ("positive", "negative"):
            if side in datapoints:
                references.append((f"stages[{i}].bake.datapoints.{side}", datapoints[side]))
    for path, metric in references:
        if metric.get("source") == "synthetic" and metric["name"] not in synthetic_names:
            yield Issue(f"{path}.name", f"metric names the undefined synthetic {metric['name']!r}")
