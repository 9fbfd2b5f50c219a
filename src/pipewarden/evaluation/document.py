"""One loaded pipeline document -> its summary and the violations of the document rules.

The per-file work of every run (in this process or a worker) and of the policy gate: whatever
calls it, a document is evaluated here, with the rules that are not `off` for its org.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.engines import rule_engine
from pipewarden.model.automation import automation_level
from pipewarden.model.evaluated import Evaluated
from pipewarden.model.finding import PipelineSummary, Violation
from pipewarden.model.pipeline import PipelineFile
from pipewarden.policy.builtin import POLICY_ERROR


def evaluate_document(pipeline: PipelineFile, context: EvalContext) -> Evaluated:
    """Run every document rule that is not off for the pipeline's org on one loaded file."""
    node, org = _place(pipeline, context)
    if not pipeline.valid:
        return _invalid(pipeline, org)
    document = pipeline.document
    enabled, params_json = context.enabled_params(node)
    document_json = pipeline.json_text if pipeline.json_text is not None else json.dumps(document)
    raw, failures = rule_engine(context.catalog).run(document_json, params_json, enabled)
    line_of = pipeline.line_of
    root_line = line_of("")
    # The engine was asked for the enabled rules only.
    violations = tuple(Violation(rule, path, message, line_of(path)) for rule, path, message in raw) + tuple(
        Violation(POLICY_ERROR.id, "", failure.message(), root_line, failure.rule) for failure in failures
    )
    return Evaluated(_valid_summary(pipeline, org), None, violations, content_hash=pipeline.content_hash)


def summarize(pipeline: PipelineFile, context: EvalContext) -> Evaluated:
    """A loaded file's summary, without running any rule: what a fleet rule sees of a pipeline
    that is not itself being checked (the policy gate's other pipelines)."""
    _, org = _place(pipeline, context)
    if not pipeline.valid:
        return _invalid(pipeline, org)
    return Evaluated(_valid_summary(pipeline, org), None, (), content_hash=pipeline.content_hash)


def _place(pipeline: PipelineFile, context: EvalContext) -> tuple[str | None, str | None]:
    """(the org node whose settings apply, the org the summary names: None without a tree or a
    team)."""
    team = pipeline.team
    node = context.node_of(team) if pipeline.name is not None or team is not None else None
    return node, node if (context.tree is not None and team is not None) else None


def _invalid(pipeline: PipelineFile, org: str | None) -> Evaluated:
    summary = PipelineSummary(pipeline.file, pipeline.name, pipeline.team, org, "none", False)
    return Evaluated(summary, pipeline.invalid, (), content_hash=pipeline.content_hash, foreign=pipeline.foreign)


def _valid_summary(pipeline: PipelineFile, org: str | None) -> PipelineSummary:
    """A valid pipeline's summary: its hosts with their paths and lines (for the fleet rules),
    and the lines fleet-rule and `policy-error` findings point at."""
    document = pipeline.document
    line_of = pipeline.line_of
    hosts = []
    for i, stage in enumerate(document["stages"]):
        for j, target in enumerate(stage["targets"]):
            for k, host in enumerate(target["hosts"]):
                path = f"stages[{i}].targets[{j}].hosts[{k}]"
                hosts.append((host, path, line_of(path)))
    return PipelineSummary(
        pipeline.file, pipeline.name, pipeline.team, org, automation_level(document), True, tuple(hosts),
        line_of("metadata.name"), line_of("metadata.team"), line_of(""),
    )


def evaluate_loaded(files: Iterable[PipelineFile], context: EvalContext) -> list[Evaluated]:
    """Evaluate files already loaded (for instance from a git ref)."""
    return [evaluate_document(f, context) for f in files]
