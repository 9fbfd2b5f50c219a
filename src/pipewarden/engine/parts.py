"""Deploy parts (`domain.plan.DeployPart`: one target's batches, hooks and artifact) in the terms
of the activities' contract: a part as the deploy activity's request names it
(`contract.DeployTarget`), and what a rollback of parts writes when it ends. Here rather than in
either: the domain knows nothing of the activities' contract, and the contract is standard library
only. Used by the workflow (a deploy; a manual rollback, and automatic ones begun before
A_ROLL_BACK) and by the rollback activity (A_ROLL_BACK)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pipewarden.engine.contract import DeployTarget, EventSpec, HookSpec
from pipewarden.engine.domain.plan import DeployPart, production_config
from pipewarden.engine.domain.rollback import rollback_outcome
from pipewarden.engine.domain.status import ExecutionStatus


def deploy_target(part: DeployPart) -> DeployTarget:
    """`part` for A_DEPLOY: its batches as lists, its hooks as (phase, command), its stage's
    `deploy.timeout` in seconds and whether its hooks get the production config."""
    return DeployTarget(part.plan.target, [list(batch) for batch in part.plan.batches],
                        [HookSpec(hook.phase, hook.command) for hook in part.hooks], part.artifact, part.commit,
                        part.stage.deploy_timeout_seconds, production_config(part.stage))


@dataclass(frozen=True)
class RollbackEnd:
    """How a rollback ended: the execution's `outcome`, the stage run's `run_status` (`rolled_back`
    or `failed`) with its `rollback_finished` `event`, and `restored_to` for the execution's reason
    (`TARGET -> ARTIFACT, ...`, or `nothing restored`)."""

    outcome: ExecutionStatus
    run_status: str
    event: EventSpec
    restored_to: str


def rollback_end(parts: Sequence[DeployPart], ok: bool, triggered: datetime, ended: datetime) -> RollbackEnd:
    """The end of a rollback of `parts` (`ok`: every restored host passed its hooks), its
    `duration_ms` from `triggered` (when the trigger was observed) to `ended`, never negative."""
    outcome = rollback_outcome(len(parts) if ok else 0, not ok)
    result = "succeeded" if outcome is ExecutionStatus.ROLLED_BACK else "failed"
    duration = max(0, int((ended - triggered).total_seconds() * 1000))
    return RollbackEnd(outcome, "rolled_back" if result == "succeeded" else "failed",
                       EventSpec("rollback_finished", {"result": result, "duration_ms": duration}, "rollback_finished"),
                       ", ".join(f"{part.plan.target} -> {part.artifact}" for part in parts) or "nothing restored")
