"""Who may go on at a stage when several executions of one pipeline meet there (engine.md, "One
stage, one occupant"), judged from the stage's runs as the store holds them:

- At each stage entry only the newest waiting execution stays: when a newer one arrives, the older
  one ends `superseded`.
- An execution `awaiting_promotion` at a stage is superseded when a newer one passes that stage's
  entry gates (its stage run leaves `waiting`: it has deployed).
- An execution never deploys to a stage that a newer execution (by N) has already deployed to: it
  ends `superseded` instead, whatever became of the newer one's run there since.
- A stage run occupying the stage (`deploying`, `testing`, `baking`, `rolling_back`) keeps every
  other execution at the entry.

"Older" and "newer" are by N. Each execution counts by its latest run at the stage (a `retry`
starts another one), except "has deployed", which any of its runs there may have done. Only
executions still `running` wait or await promotion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pipewarden.engine.domain.status import OCCUPYING, StageRunStatus


@dataclass(frozen=True, slots=True)
class RunAtStage:
    """One stage run at the stage, with what the judgement needs of its execution."""

    execution: str
    number: int
    running: bool
    """The execution's status is `running`."""
    status: StageRunStatus
    deployed: bool


@dataclass(frozen=True, slots=True)
class Rivals:
    """What the other executions at the stage mean for one of them."""

    newer_deployed: str | None
    """The newest newer execution that has deployed the stage (this one must not deploy it)."""
    newer_waiting: str | None
    """The newest newer execution waiting at the entry (this one, waiting too, is superseded)."""
    older_waiting: tuple[str, ...]
    """Older executions waiting at the entry: superseded by this one."""
    older_awaiting: tuple[str, ...]
    """Older executions awaiting promotion at the stage: superseded once this one deploys."""
    occupant: str | None
    """Another execution whose run occupies the stage."""

    @property
    def newer(self) -> str | None:
        """The newer execution that supersedes a waiting one, if any (deployed first)."""
        return self.newer_deployed or self.newer_waiting


class ClaimResult(StrEnum):
    CLAIMED = "claimed"
    BUSY = "busy"
    SUPERSEDED = "superseded"


def rivals(execution: str, number: int, runs: Sequence[RunAtStage]) -> Rivals:
    """The rivals of `execution` (number `number`) among `runs`, the stage's runs in the order
    they were started."""
    latest: dict[str, RunAtStage] = {}
    deployed: dict[str, int] = {}
    for run in runs:
        if run.execution == execution:
            continue
        latest[run.execution] = run
        if run.deployed:
            deployed[run.execution] = run.number
    newer_deployed = max(((n, e) for e, n in deployed.items() if n > number), default=None)
    newer_waiting = max(((r.number, e) for e, r in latest.items()
                         if r.number > number and r.running and r.status is StageRunStatus.WAITING), default=None)
    older = sorted((r.number, e, r) for e, r in latest.items() if r.number < number and r.running)
    occupant = next((e for e, r in latest.items() if r.status in OCCUPYING), None)
    return Rivals(
        newer_deployed=None if newer_deployed is None else newer_deployed[1],
        newer_waiting=None if newer_waiting is None else newer_waiting[1],
        older_waiting=tuple(e for _, e, r in older if r.status is StageRunStatus.WAITING),
        older_awaiting=tuple(e for _, e, r in older if r.status is StageRunStatus.AWAITING_PROMOTION),
        occupant=occupant,
    )


def claim(execution: str, number: int, runs: Sequence[RunAtStage], *, deploy: bool) -> tuple[ClaimResult, str | None]:
    """May `execution` take the stage now? For a deploy (`deploy`): SUPERSEDED by a newer one
    that deployed or waits, else BUSY while another occupies it, else CLAIMED. For a rollback
    (not `deploy`: it restores, it never supersedes) only BUSY or CLAIMED. With the execution
    that decides it (None when claimed)."""
    found = rivals(execution, number, runs)
    if deploy and found.newer is not None:
        return ClaimResult.SUPERSEDED, found.newer
    if found.occupant is not None:
        return ClaimResult.BUSY, found.occupant
    return ClaimResult.CLAIMED, None
