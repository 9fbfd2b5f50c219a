"""The deploy plan of a stage: targets in parallel, each in batches under `min_healthy`, and the
hooks each host runs (engine.md, "A stage run", step 2).

Batch size (exact arithmetic, `model.view.MinHealthy`): with a percentage P,
`max(1, hosts - ceil(hosts * P / 100))`; with a count N, `max(1, hosts - N)`; without
`min_healthy` one host at a time (100 % or a count equal to the hosts also give one at a time:
that floor cannot be kept). Batches take the hosts in the order the pipeline lists them.

Hosts are compared with `model.hosts.host_key`: a target that lists one host twice (in two
spellings, `Cell-1:80` and `cell-1:80`) deploys it once, in its first place and spelling, and
counts it once. The hooks run on each host in the order `stop`, `install`, `start`, `validate`,
only those the stage has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipewarden.model.hosts import host_key
from pipewarden.model.view import HOOK_ORDER, HookView, MinHealthy, StageView, TargetView


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """One target's deploy: `batches` cover `hosts` in order, each host exactly once;
    `kept` hosts stay in service while a batch deploys (fewer only when the floor cannot be kept:
    then `batch_size` is 1)."""

    target: str
    hosts: tuple[str, ...]
    kept: int
    batch_size: int
    batches: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class DeployPart:
    """One target's part of a deploy or a rollback: its batches, and the artifact and commit they
    install with the hooks (in order) and deploy timeout of `stage` (a rollback's: the restored
    artifact's own definition of the stage)."""

    plan: TargetPlan
    stage: StageView
    hooks: tuple[HookView, ...]
    artifact: str
    commit: str

    @property
    def longest_seconds(self) -> int:
        """The longest this part can take when no host waits for a lease: its batches one after
        the other, every hook at its timeout."""
        return len(self.plan.batches) * len(self.hooks) * self.stage.deploy_timeout_seconds


def production_config(stage: StageView) -> bool:
    """Hooks get PIPEWARDEN_PRODUCTION_CONFIG=1: a prod stage, or one marked `production_config`."""
    return stage.type == "prod" or stage.production_config


@dataclass(frozen=True, slots=True)
class StagePlan:
    """A stage's deploy: its targets (deployed in parallel) and the hooks run on each host."""

    stage: str
    hooks: tuple[HookView, ...]
    timeout_seconds: int
    targets: tuple[TargetPlan, ...]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host for target in self.targets for host in target.hosts)


def distinct_hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    """`hosts` in order without repeats (by `host_key`), each in its first spelling."""
    seen: set[str] = set()
    kept: list[str] = []
    for host in hosts:
        key = host_key(host)
        if key not in seen:
            seen.add(key)
            kept.append(host)
    return tuple(kept)


def kept_in_service(min_healthy: MinHealthy | None, hosts: int) -> int:
    """Hosts a target of `hosts` keeps in service while deploying: what `min_healthy` asks, capped
    by what one-at-a-time can give (hosts - 1) when the floor cannot be kept."""
    if hosts <= 0:
        return 0
    return hosts - batch_size(min_healthy, hosts)


def batch_size(min_healthy: MinHealthy | None, hosts: int) -> int:
    """Hosts deployed at once in a target of `hosts` (engine.md's formula; 1 without min_healthy)."""
    if min_healthy is None:
        return 1
    return min_healthy.batch_size(hosts)


def batches(hosts: Sequence[str], size: int) -> tuple[tuple[str, ...], ...]:
    """`hosts` cut in order into batches of `size` (the last may be smaller)."""
    if size < 1:
        raise ValueError(f"a batch holds at least one host, not {size}")
    return tuple(tuple(hosts[i:i + size]) for i in range(0, len(hosts), size))


def target_plan(target: TargetView, min_healthy: MinHealthy | None) -> TargetPlan:
    """The batches of one target."""
    hosts = distinct_hosts(target.hosts)
    size = batch_size(min_healthy, len(hosts))
    return TargetPlan(target.name, hosts, kept_in_service(min_healthy, len(hosts)), size, batches(hosts, size))


def subset_plan(target: TargetView, min_healthy: MinHealthy | None, only: Sequence[str]) -> TargetPlan:
    """The batches for redeploying some hosts of a target (a rollback redeploys the hosts on which
    hooks of the replaced artifact ran): the batch size is that of the whole target, because
    `min_healthy` is a share of the target's hosts; the hosts keep the target's order."""
    hosts = distinct_hosts(target.hosts)
    wanted = {host_key(host) for host in only}
    chosen = tuple(host for host in hosts if host_key(host) in wanted)
    size = batch_size(min_healthy, len(hosts))
    return TargetPlan(target.name, chosen, kept_in_service(min_healthy, len(hosts)), size, batches(chosen, size))


def hook_order(stage: StageView) -> tuple[HookView, ...]:
    """The stage's hooks in the order they run on a host: stop, install, start, validate (present ones)."""
    by_phase = {hook.phase: hook for hook in stage.hooks}
    return tuple(by_phase[phase] for phase in HOOK_ORDER if phase in by_phase)


def stage_plan(stage: StageView) -> StagePlan:
    """The deploy plan of `stage`: every target's batches and the hooks."""
    return StagePlan(
        stage=stage.name,
        hooks=hook_order(stage),
        timeout_seconds=stage.deploy_timeout_seconds,
        targets=tuple(target_plan(target, stage.min_healthy) for target in stage.targets),
    )
