"""The rollback plan of a stage (engine.md, "Rollback").

Every host of the stage on which any hook of the artifact being replaced ran is redeployed, with
the same hooks and batching, to its target's **last good artifact**: the newest artifact (by the
time its bake passed) that

1. passed this stage's bake on that target,
2. is not the artifact being replaced,
3. has not been rolled back from that target since (since its latest bake pass there),
4. is not blocklisted, and
5. whose stored content still matches its sha256,

or the artifact a person named with `rollback --to ARTIFACT`. A target with no last good artifact
is left as it is (its entry in the `to` of the `rollback_started` event is null). The execution
ends `rolled_back` when at least one target was restored and no rollback hook failed, `failed`
otherwise.

Ties: two artifacts whose latest bake passed at the same instant are ordered by their place in
the history (the store gives it in `seq` order), the later one being newer. A rollback recorded at
the very instant of a bake pass counts as "since" it (the safe reading: do not restore it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.domain.plan import DeployPart, TargetPlan, distinct_hosts, hook_order, subset_plan
from pipewarden.engine.domain.status import ExecutionStatus
from pipewarden.model.hosts import host_key
from pipewarden.model.view import StageView, pipeline_view


@dataclass(frozen=True, slots=True)
class BakePassed:
    """`artifact` passed the stage's bake on `target` at `at`."""

    artifact: str
    target: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RolledBackFrom:
    """`artifact` was rolled back from `target` at `at`."""

    artifact: str
    target: str
    at: datetime


TargetEvent = BakePassed | RolledBackFrom
"""One entry of a stage's history, as the store gives it (in `seq` order)."""


@dataclass(frozen=True, slots=True)
class TargetRollback:
    """One target of a rollback: the hosts to redeploy (in the target's order) and the artifact
    to restore, None when the target has no last good artifact (left as it is)."""

    target: str
    hosts: tuple[str, ...]
    artifact: str | None

    @property
    def restores(self) -> bool:
        return self.artifact is not None


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    stage: str
    replacing: str
    targets: tuple[TargetRollback, ...]

    @property
    def to(self) -> dict[str, str | None]:
        """Target -> artifact: the `to` of the `rollback_started` event."""
        return {target.target: target.artifact for target in self.targets}

    @property
    def restoring(self) -> tuple[TargetRollback, ...]:
        return tuple(target for target in self.targets if target.restores)


def last_good(target: str, replacing: str, history: Sequence[TargetEvent], *,
              blocklisted: AbstractSet[str], intact: AbstractSet[str]) -> str | None:
    """The last good artifact of `target` (the module docstring's five conditions), else None."""
    latest_pass: dict[str, tuple[datetime, int]] = {}
    for index, event in enumerate(history):
        if isinstance(event, BakePassed) and event.target == target:
            mark = (event.at, index)
            if event.artifact not in latest_pass or mark > latest_pass[event.artifact]:
                latest_pass[event.artifact] = mark
    rolled_back: dict[str, datetime] = {}
    for event in history:
        if isinstance(event, RolledBackFrom) and event.target == target:
            previous = rolled_back.get(event.artifact)
            if previous is None or event.at > previous:
                rolled_back[event.artifact] = event.at
    best: tuple[tuple[datetime, int], str] | None = None
    for artifact, mark in latest_pass.items():
        if artifact == replacing or artifact in blocklisted or artifact not in intact:
            continue
        rollback_at = rolled_back.get(artifact)
        if rollback_at is not None and rollback_at >= mark[0]:
            continue
        if best is None or mark > best[0]:
            best = (mark, artifact)
    return None if best is None else best[1]


def plan_rollback(stage: StageView, replacing: str, touched_hosts: Collection[str],
                  history: Sequence[TargetEvent], *, blocklisted: AbstractSet[str], intact: AbstractSet[str],
                  to: str | None = None) -> RollbackPlan:
    """The rollback of `stage` away from `replacing`.

    `touched_hosts` are the hosts on which any hook of `replacing` ran (compared by `host_key`);
    targets with none of them are not part of the rollback. `to` is `--to ARTIFACT`: it must not be
    the artifact being replaced, must be intact and not blocklisted (a rollback is not exempt from
    the blocklist), else Refused.
    """
    if to is not None:
        if to == replacing:
            raise Refused("rollback", f"{to} is the artifact being replaced")
        if to in blocklisted:
            raise Refused("rollback", f"{to} is blocklisted")
        if to not in intact:
            raise Refused("rollback", f"the stored content of {to} is missing or no longer matches its sha256")
    touched = {host_key(host) for host in touched_hosts}
    targets: list[TargetRollback] = []
    for target in stage.targets:
        hosts = tuple(host for host in target.hosts if host_key(host) in touched)
        if not hosts:
            continue
        artifact = to if to is not None else last_good(target.name, replacing, history,
                                                       blocklisted=blocklisted, intact=intact)
        targets.append(TargetRollback(target.name, distinct_hosts(hosts), artifact))
    return RollbackPlan(stage.name, replacing, tuple(targets))


def rollback_batches(stage: StageView, target: TargetRollback) -> TargetPlan:
    """The batches of one target's rollback, with the stage's (the restored artifact's) batching."""
    for view in stage.targets:
        if view.name == target.target:
            return subset_plan(view, stage.min_healthy, target.hosts)
    raise KeyError(target.target)


class RestoreSource(Protocol):
    """A target of a rollback plan as the plan activity gives it (contract.RollbackTarget): its
    touched hosts, and its last good artifact with that artifact's commit and definition (None
    when it has none)."""

    @property
    def target(self) -> str: ...
    @property
    def hosts(self) -> Sequence[str]: ...
    @property
    def artifact(self) -> str | None: ...
    @property
    def commit(self) -> str | None: ...
    @property
    def document(self) -> Mapping[str, Any] | None: ...


def restored_parts(stage: str, targets: Iterable[RestoreSource]) -> list[DeployPart]:
    """The deploy of a rollback plan's targets: each target with a last good artifact is
    redeployed with that artifact's own definition of `stage` (its hooks, batching and timeout).
    A target without one, or whose restored definition lacks the stage, is left as it is. Errors:
    those of `pipeline_view` for a definition that is not valid, which the plan never names (it
    only names artifacts that passed the stage)."""
    parts: list[DeployPart] = []
    for target in targets:
        if target.artifact is None or target.document is None or target.commit is None:
            continue
        restored = next((s for s in pipeline_view(target.document).stages if s.name == stage), None)
        if restored is None:
            continue
        batches = rollback_batches(restored, TargetRollback(target.target, tuple(target.hosts), target.artifact))
        parts.append(DeployPart(batches, restored, hook_order(restored), target.artifact, target.commit))
    return parts


def rollback_outcome(restored_targets: int, hook_failed: bool) -> ExecutionStatus:
    """`rolled_back` when at least one target was restored and no rollback hook failed, else `failed`."""
    return ExecutionStatus.ROLLED_BACK if restored_targets > 0 and not hook_failed else ExecutionStatus.FAILED

