"""The evaluation core: pipeline files + org settings -> findings.

Every front (check, report, the promotion preview, later the release engine) calls
`evaluate_paths` + `to_findings` and gets the same findings. Work per file (load, validate, run
all document rules in one engine query) happens in worker processes for large fleets, because
the embedded engine holds the GIL. Levels, schedules and exceptions are applied by one function,
`apply_levels`: in the worker for the files it evaluated, here for cached files; the fleet-wide
rule runs here, over the whole fleet.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import marshal
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from pipewarden.load.pipeline import load_pipeline
from pipewarden.load.yamlsafe import iterative_parsing
from pipewarden.model.automation import automation_level
from pipewarden.model.evaluated import (
    Evaluated,
    FindingRecord,
    finding_from_record,
    from_worker_record,
    to_worker_record,
)
from pipewarden.model.finding import Finding, PipelineSummary, Violation
from pipewarden.model.hosts import host_key
from pipewarden.model.pipeline import PipelineFile
from pipewarden.orgs.resolve import RuleSetting, default_settings, find_exception, resolve_settings
from pipewarden.orgs.tree import OrgTree
from pipewarden.policy.builtin import POLICY_ERROR
from pipewarden.policy.catalog import Catalog
from pipewarden.policy.engine import RuleEngine, engine_for
from pipewarden.policy.rule import Rule

if TYPE_CHECKING:
    from pipewarden.policy.engine import RuleFailure

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 400
CHUNK = 200


@dataclass
class EvalContext:
    """What a run evaluates with: the catalog, the org tree (optional) and today's date (UTC)."""

    catalog: Catalog
    tree: OrgTree | None
    today: dt.date
    overrides: dict[str, dict[str, RuleSetting]] = field(default_factory=dict)
    _settings: dict[str | None, dict[str, RuleSetting]] = field(default_factory=dict)
    _levels: dict[tuple[str | None, str], tuple[str, str | None]] = field(default_factory=dict)
    _excepted: set[str] | None = None
    _params_json: dict[str | None, tuple[frozenset[str], str]] = field(default_factory=dict)

    def enabled_params(self, node: str | None) -> tuple[frozenset[str], str]:
        """The rules not `off` for `node`, and their params as the engine's JSON (made once)."""
        if node not in self._params_json:
            settings = self.settings(node)
            params = {rule_id: s.params for rule_id, s in settings.items() if s.level_at(self.today)[0] != "off"}
            self._params_json[node] = (frozenset(params), json.dumps(params))
        return self._params_json[node]

    def excepted_rules(self) -> set[str]:
        """Rules with an exception anywhere in the tree: the others skip the lookup."""
        if self._excepted is None:
            tree = self.tree
            self._excepted = {e.rule for n in tree.nodes.values() for e in n.exceptions} if tree else set()
        return self._excepted

    def node_of(self, team: str | None) -> str | None:
        """The org node a pipeline's team belongs to (the root for unknown teams)."""
        if self.tree is None:
            return None
        return self.tree.node_for_team(team) or self.tree.root

    def settings(self, node: str | None) -> dict[str, RuleSetting]:
        """Effective rule settings for `node` (catalog defaults without an org tree)."""
        if node not in self._settings:
            if node is not None and node in self.overrides:
                self._settings[node] = self.overrides[node]
            elif self.tree is None or node is None:
                self._settings[node] = default_settings(self.catalog)
            else:
                self._settings[node] = resolve_settings(self.tree, node, self.catalog)
        return self._settings[node]


@dataclass(frozen=True)
class Result:
    """Everything a run found, for every output format."""

    pipelines: tuple[PipelineSummary, ...]
    findings: tuple[Finding, ...]
    context: EvalContext


_engine: Any = None
_context: EvalContext | None = None
# Called with each batch of fresh results where they were computed (in the worker, for a
# pool): the cache writes them there, in parallel, instead of in the parent afterwards.
_after_batch: Callable[[list[Evaluated]], None] | None = None


def rule_engine(catalog: Catalog) -> RuleEngine:
    """This thread's engine for `catalog`, compiled on first use: one per thread and catalog, and
    a forked worker makes its own (policy.engine.engine_for)."""
    return engine_for(catalog)


def evaluate_document(pipeline: PipelineFile, context: EvalContext) -> Evaluated:
    """Run every document rule that is not off for the pipeline's org on one loaded file."""
    team = pipeline.team
    node = context.node_of(team) if pipeline.name is not None or team is not None else None
    org = node if (context.tree is not None and team is not None) else None
    if not pipeline.valid:
        summary = PipelineSummary(pipeline.file, pipeline.name, team, org, "none", False)
        return Evaluated(summary, pipeline.invalid, (), content_hash=pipeline.content_hash)
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
    hosts = []
    for i, stage in enumerate(document["stages"]):
        for j, target in enumerate(stage["targets"]):
            for k, host in enumerate(target["hosts"]):
                path = f"stages[{i}].targets[{j}].hosts[{k}]"
                hosts.append((host, path, line_of(path)))
    summary = PipelineSummary(
        pipeline.file, pipeline.name, team, org, automation_level(document), True, tuple(hosts),
        line_of("metadata.name"), line_of("metadata.team"), root_line,
    )
    return Evaluated(summary, None, violations, content_hash=pipeline.content_hash)


def _evaluate_path(path: str) -> Evaluated:
    assert _context is not None
    return evaluate_document(load_pipeline(path), _context)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during bulk work.

    Evaluating a fleet allocates millions of small, acyclic objects; each full collection
    scans the whole (growing) heap, which made a 20,000-pipeline run ~40% slower. Reference
    counting still frees everything; the collector runs once at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _evaluate_chunk(paths: list[str]) -> bytes:
    """A worker's share: evaluate, and apply levels too, so the parent has less serial work.

    The answer is marshalled records (see model.evaluated), not pickled objects.
    """
    assert _context is not None
    gc.disable()  # see gc_paused; a worker collects once per chunk instead
    gc.collect()
    items = [_evaluate_path(path) for path in paths]
    if _after_batch is not None:
        _after_batch(items)
    context = _context
    return marshal.dumps([
        to_worker_record(item, tuple(document_finding_records(item, context)), id(context)) for item in items
    ])


def _fresh_engine() -> None:
    """Worker start: build an engine of its own rather than use one inherited through fork
    (the engine is bound to the thread that made it)."""
    global _engine
    _engine = None


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _chunks(paths: Sequence[str], workers: int) -> list[list[str]]:
    """Chunks of CHUNK files, then quarter-size ones for the last few rounds, so that at the
    end no worker waits long for another to finish a full chunk."""
    chunks = []
    start = 0
    while start < len(paths):
        size = CHUNK if len(paths) - start > 2 * workers * CHUNK else max(CHUNK // 4, 1)
        chunks.append(list(paths[start : start + size]))
        start += size
    return chunks


def evaluate_paths(
    paths: Sequence[str],
    context: EvalContext,
    progress: Callable[[int], None] | None = None,
    after_batch: Callable[[list[Evaluated]], None] | None = None,
) -> list[Evaluated]:
    """Load and evaluate files, in worker processes when the fleet is large.

    `after_batch`, when given, receives every result once, in batches, in the process that
    computed them (a worker, after fork: it must not use the caller's open connections).
    """
    global _context, _after_batch
    _context = context
    _after_batch = after_batch
    if len(paths) < PARALLEL_THRESHOLD or _workers() == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _evaluate_here(paths, progress, after_batch)
    results: list[Evaluated] = []
    # Frozen objects are never scanned by a collection: a worker's per-chunk gc.collect() then
    # costs what that chunk allocated, not the whole heap inherited from this process.
    gc.freeze()
    try:
        with gc_paused():
            _evaluate_in_pool(paths, results, progress)
    except BrokenProcessPool:
        # A worker died (a crash in native code on some input): the files without an answer are
        # checked again here, with the iterative parser, so the run finishes and says so.
        remaining = paths[len(results) :]
        print(
            ("\n" if progress else "")  # after the progress bar's line, not into it
            + f"pipewarden: warning: a worker process died; {len(remaining)} file(s) are checked again in "
            "the main process with the iterative YAML parser (please report this, with the files if you can)",
            file=sys.stderr,
        )
        with iterative_parsing(), gc_paused():
            results.extend(_evaluate_here(remaining, progress, after_batch))
    finally:
        gc.unfreeze()
    return results


def _evaluate_here(
    paths: Sequence[str], progress: Callable[[int], None] | None, after_batch: Callable[[list[Evaluated]], None] | None
) -> list[Evaluated]:
    """Evaluate in this process, one file after the other."""
    results = []
    for path in paths:
        results.append(_evaluate_path(path))
        if progress:
            progress(1)
    if after_batch is not None and results:
        after_batch(results)
    return results


def _evaluate_in_pool(paths: Sequence[str], results: list[Evaluated], progress: Callable[[int], None] | None) -> None:
    """Fill `results` in path order. A pool of the standard library's executor, because it
    raises BrokenProcessPool when a worker dies where multiprocessing.Pool would wait forever."""
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(_workers(), mp_context=fork, initializer=_fresh_engine) as pool:
        for answer in pool.map(_evaluate_chunk, _chunks(paths, _workers())):
            batch = marshal.loads(answer)
            results.extend(from_worker_record(record) for record in batch)
            if progress:
                progress(len(batch))


def evaluate_loaded(files: Iterable[PipelineFile], context: EvalContext) -> list[Evaluated]:
    """Evaluate files already loaded (for instance from a git ref)."""
    return [evaluate_document(f, context) for f in files]


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
                {"file": s.file, "name": s.name, "hosts": [{"host": h, "key": host_key(h), "path": p} for h, p, _ in s.host_paths]}
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
    an exact pre-filter (hosts compared by `host_key`, as the rule compares them) that keeps the Rego rule's work proportional to the clashes, not to the
    fleet (regorus needs seconds for 10,000 pipelines, microseconds for a few hundred).
    """
    names: dict[str | None, int] = {}
    first_owner: dict[str, str] = {}
    shared: set[str] = set()
    for summary in valid:
        names[summary.name] = names.get(summary.name, 0) + 1
        file = summary.file
        for host, _, _ in summary.host_paths:
            key = host_key(host)
            if first_owner.setdefault(key, file) != file:
                shared.add(key)
    return [
        s for s in valid
        if names[s.name] > 1 or (shared and any(host_key(host) in shared for host, _, _ in s.host_paths))
    ]


def _unknown_team(evaluated: Evaluated, context: EvalContext) -> Violation | None:
    summary = evaluated.summary
    if context.tree is None or evaluated.invalid is not None or summary.team is None:
        return None
    if context.tree.node_for_team(summary.team) is not None:
        return None
    return Violation(
        "unknown-team",
        "metadata.team",
        f"team {summary.team!r} is in no org node; add it to an org's 'teams' or fix metadata.team",
        0,
    )


def to_findings(evaluated: list[Evaluated], context: EvalContext) -> Result:
    """Apply levels, schedules and exceptions, the one place they are applied.

    Workers already did this for the files they evaluated (`Evaluated.findings`); files served
    from the cache are done here. The fleet-wide rule's findings are always added here.
    """
    with gc_paused():
        return _to_findings(evaluated, context)


def _to_findings(evaluated: list[Evaluated], context: EvalContext) -> Result:
    fleet = fleet_violations(evaluated, context)
    findings: list[Finding] = []
    for item in evaluated:
        if item.findings is not None and item.findings_context == id(context):
            findings.extend(item.findings)
        else:
            findings.extend(document_findings(item, context))
        if item.summary.file in fleet:
            findings.extend(apply_levels(item, fleet[item.summary.file], context))
    findings.sort(key=attrgetter("file", "line", "rule", "path", "message"))
    return Result(tuple(e.summary for e in evaluated), tuple(findings), context)


def document_findings(item: Evaluated, context: EvalContext) -> list[Finding]:
    """The findings of one file's own violations (not the fleet rule's), levels applied."""
    return [finding_from_record(r, item.summary) for r in document_finding_records(item, context)]


def document_finding_records(item: Evaluated, context: EvalContext) -> list[FindingRecord]:
    """`document_findings` as records (what a worker sends; see model.evaluated)."""
    summary = item.summary
    if item.invalid is not None:
        invalid = item.invalid
        return [("valid-definition", "enforce", invalid.line, invalid.path, invalid.message, False, None, None, None)]
    violations = list(item.violations)
    unknown = _unknown_team(item, context)
    if unknown is not None:
        violations.append(Violation(unknown.rule, unknown.path, unknown.message, summary.team_line))
    return _level_records(item, violations, context)


def apply_levels(item: Evaluated, violations: Iterable[Violation], context: EvalContext) -> list[Finding]:
    """Violations -> findings: the effective level now, the schedule, the covering exception."""
    return [finding_from_record(r, item.summary) for r in _level_records(item, violations, context)]


def _level_records(item: Evaluated, violations: Iterable[Violation], context: EvalContext) -> list[FindingRecord]:
    summary = item.summary
    node = context.node_of(summary.team)
    settings = context.settings(node)
    findings: list[FindingRecord] = []
    for violation in violations:
        if violation.rule == POLICY_ERROR.id:
            record = _policy_error_record(violation, settings, context)
            if record is not None:
                findings.append(record)
            continue
        setting = settings.get(violation.rule)
        if setting is None:
            continue
        key = (node, violation.rule)
        if key not in context._levels:
            context._levels[key] = setting.level_at(context.today)
        level, enforce_from = context._levels[key]
        if level == "off":
            continue
        exception = None
        if context.tree is not None and node is not None and violation.rule in context.excepted_rules():
            granted = find_exception(context.tree, node, violation.rule, summary.name, summary.team, context.today)
            if granted is not None:
                exception = (
                    granted.org, granted.reason, granted.approved_by,
                    granted.expires.isoformat() if granted.expires else None, granted.permanent,
                )
        findings.append((violation.rule, level, violation.line, violation.path, violation.message,
                         exception is not None, enforce_from, exception, None))
    return findings


def _policy_error_record(
    violation: Violation, settings: dict[str, RuleSetting], context: EvalContext
) -> FindingRecord | None:
    """A rule that failed while it ran: always `enforce`, never excepted, whatever the org
    configs say about `policy-error` (cli.md). None when the failed rule is off under these
    settings: it would not have run (a promotion preview applies the settings from before the
    promotion to the same evaluation)."""
    failed = violation.failed_rule
    setting = settings.get(failed) if failed is not None else None
    if failed is not None and (setting is None or setting.level_at(context.today)[0] == "off"):
        return None
    return (POLICY_ERROR.id, "enforce", violation.line, violation.path, violation.message, False, None, None, failed)


def check_files(
    paths: Sequence[str], context: EvalContext, progress: Callable[[int], None] | None = None
) -> Result:
    """The whole per-run evaluation for files on disk."""
    return to_findings(evaluate_paths(paths, context, progress), context)
