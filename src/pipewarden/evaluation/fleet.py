"""The fleet rules: rules that see every valid pipeline at once (`single-release-process` and an
organisation's own), with the exact pre-filter that keeps the built-in one fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.engines import rule_engine
from pipewarden.model.evaluated import Evaluated
from pipewarden.model.finding import PipelineSummary, Violation
from pipewarden.model.hosts import host_key
from pipewarden.policy.builtin import POLICY_ERROR

if TYPE_CHECKING:
    from pipewarden.policy.engine import RuleFailure
    from pipewarden.policy.rule import Rule


def fleet_violations(evaluated: list[Evaluated], context: EvalContext) -> dict[str, list[Violation]]:
    """Violations of the fleet-wide rules, by file: these rules see every valid pipeline at once.

    A fleet rule that fails while it runs gives `policy-error` violations (see `_run_fleet_rule`).
    """
    rules = context.catalog.fleet_rules()
    if not rules:
        return {}
    valid = [e.summary for e in evaluated if e.invalid is None]
    lines = {s.file: ({p: line for _, p, line in s.host_paths}, s.name_line, s.root_line) for s in valid}
    inputs: dict[bool, list[dict[str, Any]]] = {}
    found: dict[str, list[Violation]] = {}
    engine = rule_engine(context.catalog)
    for rule in rules:
        # The built-in single-release-process can only fire on pipelines that share a name or a
        # host: it is given those only. An organisation's own fleet rule sees the whole fleet.
        clashes_only = rule.id == "single-release-process" and not rule.custom
        if clashes_only not in inputs:
            inputs[clashes_only] = [
                {"file": s.file, "name": s.name,
                 "hosts": [{"host": h, "key": host_key(h), "path": p} for h, p, _ in s.host_paths]}
                for s in (_possible_clashes(valid) if clashes_only else valid)
            ]
        items, failures = _run_fleet_rule(engine, rule, inputs[clashes_only])
        for item in items:
            file = str(item.get("file"))
            path = str(item.get("path", ""))
            host_lines, name_line, _ = lines.get(file, ({}, 1, 1))
            line = name_line if path == "metadata.name" else host_lines.get(path, 1)
            found.setdefault(file, []).append(Violation(rule.id, path, str(item.get("msg", "")), line))
        for file, failure in failures.items():
            root_line = lines.get(file, ({}, 1, 1))[2]
            found.setdefault(file, []).append(Violation(POLICY_ERROR.id, "", failure.message(), root_line, rule.id))
    return found


def _run_fleet_rule(
    engine: Any, rule: Rule, summaries: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, RuleFailure]]:
    """A fleet rule's findings, and its failure per file when it fails while it runs.

    A fleet rule sees all pipelines at once, so when it fails the pipeline at fault is found by
    asking the rule about each pipeline on its own: those that make it fail alone get the
    failure, and the rule runs again without them, so that the others still get their findings
    (those that would have involved a failing pipeline are lost with it). When no pipeline makes
    it fail alone, the failure needs several together, and every pipeline it saw gets it.
    """
    from pipewarden.policy.engine import RuleFailed

    try:
        return engine.evaluate_fleet(rule, summaries), {}
    except RuleFailed as whole:
        failure = whole.failure
    failures: dict[str, RuleFailure] = {}
    for summary in summaries:
        try:
            engine.evaluate_fleet(rule, [summary])
        except RuleFailed as alone:
            failures[str(summary["file"])] = alone.failure
    if failures:
        rest = [s for s in summaries if str(s["file"]) not in failures]
        try:
            return engine.evaluate_fleet(rule, rest), failures
        except RuleFailed as again:
            failure = again.failure
        summaries = rest
    failures.update((str(s["file"]), failure) for s in summaries)
    return [], failures


def _possible_clashes(valid: list[PipelineSummary]) -> list[PipelineSummary]:
    """The pipelines that share a name or a host with another one.

    Only these can take part in a fleet-rule finding, so only these are sent to the engine:
    an exact pre-filter (hosts compared by `host_key`, as the rule compares them) that keeps
    the Rego rule's work proportional to the clashes, not to the fleet (regorus needs seconds
    for 10,000 pipelines, microseconds for a few hundred).
    """
    names: dict[str | None, int] = {}
    first_owner: dict[str, str] = {}
    shared: set[str] = set()
    # Each pipeline's host keys, computed once for both passes.
    keys = [[host_key(host) for host, _, _ in summary.host_paths] for summary in valid]
    for summary, summary_keys in zip(valid, keys):
        names[summary.name] = names.get(summary.name, 0) + 1
        for key in summary_keys:
            if first_owner.setdefault(key, summary.file) != summary.file:
                shared.add(key)
    return [
        s for s, summary_keys in zip(valid, keys)
        if names[s.name] > 1 or (shared and any(key in shared for key in summary_keys))
    ]
