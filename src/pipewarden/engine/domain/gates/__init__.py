"""The gates: one module per gate, and the registry of every gate name in engine.md's order.

Each gate module has `NAME` and `evaluate(observations..., now) -> GateResult` (base.py). Every
gate of engine.md is built (`BUILT`); its place, its phase and when it applies to a stage are
registered below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pipewarden.engine.domain.gates.base import (
    FAIL,
    OK,
    PASS,
    WAIT,
    GateOutcome,
    GateResult,
    combine,
    earliest_pass,
    event_needed,
)
from pipewarden.model.view import StageView

__all__ = [
    "BAKE_GATES", "BUILT", "ENTRY_GATES", "FAIL", "GATES", "OK", "PASS", "WAIT", "GateOutcome", "GateResult",
    "GateSpec", "bake_gates", "combine", "earliest_pass", "entry_gates", "event_needed",
]


@dataclass(frozen=True, slots=True)
class GateSpec:
    """A gate's place in a stage run: `entry` gates are evaluated before the deploy (in this
    order), `bake` gates while baking; `applies` says whether a stage has the gate at all."""

    name: str
    phase: Literal["entry", "bake"]
    applies: Callable[[StageView], bool]


def _always(stage: StageView) -> bool:
    return True


GATES: tuple[GateSpec, ...] = (
    GateSpec("policy", "entry", _always),
    GateSpec("blocklist", "entry", _always),
    GateSpec("approval", "entry", lambda stage: bool(stage.approvals)),
    GateSpec("window", "entry", lambda stage: stage.window is not None),
    GateSpec("alarms", "entry", lambda stage: bool(stage.alarms)),
    GateSpec("stage_busy", "entry", _always),
    GateSpec("paused", "entry", _always),
    GateSpec("bake_time", "bake", _always),
    GateSpec("datapoints", "bake", lambda stage: stage.datapoints is not None),
)
"""Every gate of engine.md, entry gates in the order engine.md lists them, then the bake's."""

GATE_NAMES: tuple[str, ...] = tuple(spec.name for spec in GATES)
ENTRY_GATES: tuple[str, ...] = tuple(spec.name for spec in GATES if spec.phase == "entry")
BAKE_GATES: tuple[str, ...] = tuple(spec.name for spec in GATES if spec.phase == "bake")

BUILT: frozenset[str] = frozenset({"policy", "blocklist", "approval", "window", "alarms", "stage_busy", "paused",
                                   "bake_time", "datapoints"})
"""Gates with a module that the engine evaluates (issue 13; `blocklist`, `window`, `alarms` and
`datapoints` from issue 14): every gate of engine.md."""


def entry_gates(stage: StageView, *, built_only: bool = True) -> tuple[str, ...]:
    """The entry gates `stage` has, in evaluation order (only the built ones by default)."""
    return tuple(spec.name for spec in GATES if spec.phase == "entry" and spec.applies(stage)
                 and (spec.name in BUILT or not built_only))


def bake_gates(stage: StageView, *, built_only: bool = True) -> tuple[str, ...]:
    """The gates of `stage`'s bake, in order (only the built ones by default)."""
    return tuple(spec.name for spec in GATES if spec.phase == "bake" and spec.applies(stage)
                 and (spec.name in BUILT or not built_only))
