"""`stage_busy`: no other execution occupies the stage (engine.md, "One stage, one occupant")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipewarden.engine.domain.gates.base import PASS, WAIT, GateResult, clock
from pipewarden.engine.domain.status import OCCUPYING, StageRunStatus

NAME = "stage_busy"


@dataclass(frozen=True, slots=True)
class Occupant:
    """A stage run of the stage, as the store sees it."""

    execution: str
    status: StageRunStatus


def evaluate(execution: str, runs: tuple[Occupant, ...] | list[Occupant], *, now: datetime) -> GateResult:
    """PASS unless a stage run of another execution is occupying the stage (`deploying`,
    `testing`, `baking` or `rolling_back`); then WAIT `stage_busy` naming it. No `until`: the
    occupant's end is not known ahead."""
    occupying = [run for run in runs if run.status in OCCUPYING and run.execution != execution]
    inputs = {**clock(now), "occupants": [{"execution": r.execution, "status": str(r.status)} for r in occupying]}
    if not occupying:
        return PASS("the stage is free", inputs=inputs)
    first = occupying[0]
    return WAIT("stage_busy", f"the stage is occupied by {first.execution} ({first.status})", inputs=inputs)
