"""`policy`: the checker's verdict on the artifact's own pipeline.yaml (engine.md, "Gates").

The activity runs `evaluation.gate` (the same core as `check`) and hands this gate the findings
as `PolicyFinding` values, so the domain does not import the checker. The gate fails on any
finding at `enforce` that is not excepted, listing them (rule, path, message); the execution then
ends `failed`. When the engine's org config or policies became invalid while it runs, the
activity passes `config_error` (file and line) and the gate waits until they are fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pipewarden.engine.domain.gates.base import FAIL, PASS, WAIT, GateResult, clock

NAME = "policy"
ENFORCE = "enforce"

# Findings listed in the reason; all of them are in the event's inputs.
_REASON_FINDINGS = 5


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    """One finding of the checker, as much of it as the gate judges and lists."""

    rule: str
    level: str
    path: str
    message: str
    excepted: bool = False

    @property
    def blocks(self) -> bool:
        return self.level == ENFORCE and not self.excepted


def evaluate(findings: Sequence[PolicyFinding], *, now: datetime, config_error: str | None = None) -> GateResult:
    """PASS without a blocking finding; FAIL `enforce_findings` listing them; WAIT
    `config_error` while the org config or policies cannot be read."""
    inputs: dict[str, object] = {**clock(now), "findings": len(findings)}
    if config_error is not None:
        return WAIT("config_error", f"the org config or policies are invalid: {config_error}",
                    inputs={**inputs, "config_error": config_error})
    blocking = [finding for finding in findings if finding.blocks]
    if not blocking:
        excepted = sum(1 for finding in findings if finding.level == ENFORCE and finding.excepted)
        note = f" ({excepted} excepted)" if excepted else ""
        return PASS(f"no enforce finding{note}", inputs={**inputs, "excepted": excepted})
    listed = "; ".join(f"{f.rule} at {f.path or '(document)'}: {f.message}" for f in blocking[:_REASON_FINDINGS])
    more = f"; and {len(blocking) - _REASON_FINDINGS} more" if len(blocking) > _REASON_FINDINGS else ""
    count = f"{len(blocking)} enforce finding{'s' if len(blocking) != 1 else ''}"
    return FAIL("enforce_findings", f"{count}: {listed}{more}", inputs={
        **inputs,
        "enforce": [{"rule": f.rule, "path": f.path, "message": f.message} for f in blocking],
    })
