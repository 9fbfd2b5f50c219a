"""A deploy part (`domain.plan.DeployPart`: one target's batches, hooks and artifact) as the deploy
activity's request names it (`contract.DeployTarget`). Here rather than in either: the domain
knows nothing of the activities' contract, and the contract is standard library only. Used by the
workflow (a deploy) and by the rollback activity (A_ROLL_BACK)."""

from __future__ import annotations

from pipewarden.engine.contract import DeployTarget, HookSpec
from pipewarden.engine.domain.plan import DeployPart, production_config


def deploy_target(part: DeployPart) -> DeployTarget:
    """`part` for A_DEPLOY: its batches as lists, its hooks as (phase, command), its stage's
    `deploy.timeout` in seconds and whether its hooks get the production config."""
    return DeployTarget(part.plan.target, [list(batch) for batch in part.plan.batches],
                        [HookSpec(hook.phase, hook.command) for hook in part.hooks], part.artifact, part.commit,
                        part.stage.deploy_timeout_seconds, production_config(part.stage))
