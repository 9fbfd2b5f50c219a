"""The policy gate: one pipeline document checked under an org config and policies, at a time.

What the release engine's `policy` gate (engine.md) and the OPA decision API (server.md) call.
The document is the text or bytes of a pipeline.yaml with the name findings give it; the
answer holds the same findings as `pipewarden check` gives for that file (the same loading,
document rules, fleet rules, levels, schedules and exceptions: the modules `check` runs, not a
copy of them), those that block, and whether the document passes.

Thread-safe: each call loads its own context (catalog and org tree as they are on disk now) and
asks `rule_engine` for the engine of the thread it runs on; it keeps nothing between calls and
prints nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipewarden.evaluation.context import EvalContext, build_context
from pipewarden.evaluation.document import evaluate_document, summarize
from pipewarden.evaluation.levels import to_findings
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.model.finding import Finding, PipelineSummary
from pipewarden.model.pipeline import PipelineFile


@dataclass(frozen=True)
class GateResult:
    """One document's verdict.

    `findings`: every finding of the document, as `check` sorts them (excepted ones and warnings
    included); `blocking`: those at `enforce` and not excepted; `allowed`: no finding blocks.
    """

    pipeline: PipelineSummary
    findings: tuple[Finding, ...]
    blocking: tuple[Finding, ...]
    allowed: bool


def check_document(
    source: bytes | str,
    name: str,
    *,
    org_config: str | None,
    policies: Sequence[str] = (),
    now: dt.datetime,
    others: Mapping[str, bytes | str | PipelineFile] | None = None,
) -> GateResult:
    """Check one pipeline document under the org config `org_config` (None: every rule at its
    catalog default) and the extra rule folders `policies`, as of `now`.

    `source` is the file's content (text is read as UTF-8), `name` the name findings give it.
    `others` (name -> content, or the file already loaded under that name: a caller that checks
    often against the same others loads each once), when given, are the other pipelines the fleet
    rules compare the document with (engine.md: the heads of the engine's other pipelines); only
    the document's
    own findings are returned. A configuration that does not load (org config, policies) raises
    the same errors as `check` (ConfigError, PolicyError); a document that does not load is not
    an error: it gets its `valid-definition` finding.
    """
    return check_document_in(source, name, build_context(org_config, policies, now), others)


def check_document_in(
    source: bytes | str, name: str, context: EvalContext,
    others: Mapping[str, bytes | str | PipelineFile] | None = None,
) -> GateResult:
    """`check_document` with a context already built (`build_context`); a context may be shared
    by threads (see EvalContext)."""
    if others is not None and name in others:
        raise ValueError(f"the document {name!r} is also among the other pipelines; give each a distinct name")
    evaluated = [evaluate_document(load_pipeline_bytes(name, _bytes(source)), context)]
    # The others take part in the fleet rules only: their own rules are not run.
    evaluated += [summarize(s if isinstance(s, PipelineFile) else load_pipeline_bytes(n, _bytes(s)), context)
                  for n, s in (others or {}).items()]
    findings = tuple(f for f in to_findings(evaluated, context).findings if f.file == name)
    blocking = tuple(f for f in findings if f.blocks())
    return GateResult(evaluated[0].summary, findings, blocking, not blocking)


def _bytes(source: bytes | str) -> bytes:
    # A lone surrogate cannot be UTF-8: kept as bytes, it makes the document undecodable (its
    # valid-definition finding) rather than an exception here.
    return source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
