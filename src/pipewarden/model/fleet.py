"""The repositories of a fleet, as a report counts them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Repo:
    """One repository: its pipeline file (as findings name it), or None when it has none.

    `team` is the team the inventory declares; a valid pipeline's own `metadata.team` wins
    over it (org-config.md: the inventory's team is "used when the repo has no (valid)
    pipeline file").
    """

    name: str
    team: str | None
    file: str | None
    where: str = ""  # "inventory.yaml:12" for notes about this repository; "" without an inventory
