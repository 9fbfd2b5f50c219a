"""`Result`: everything a run found, the value every output format renders."""

from __future__ import annotations

from dataclasses import dataclass

from pipewarden.evaluation.context import EvalContext
from pipewarden.model.finding import Finding, PipelineSummary


@dataclass(frozen=True)
class Result:
    """Everything a run found, for every output format.

    `notes` are what the run has to tell the person running it besides the findings (a damaged
    cache rebuilt, a worker process that died, no pipeline file found), each a line without the
    `pipewarden: ` prefix, in the order they arose; the front that renders the result shows them.
    `config` is the project config (`.pipewarden.yaml`) a `check` took its options from, as the
    outputs name it, or None.
    """

    pipelines: tuple[PipelineSummary, ...]
    findings: tuple[Finding, ...]
    context: EvalContext
    notes: tuple[str, ...] = ()
    config: str | None = None
