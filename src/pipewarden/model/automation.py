"""How automated a release is: rules.md's automation levels, from the stage transitions."""

from __future__ import annotations

from typing import Any

from pipewarden.model.finding import AUTOMATION_LEVELS


def manual_transitions(document: dict[str, Any]) -> list[int]:
    """Indices j of the stages whose incoming transition is manual.

    The transition into stage j is manual when stage j has approvals, or when the stage
    before it promotes manually.
    """
    stages = document.get("stages", [])
    manual = []
    for j, stage in enumerate(stages):
        if stage.get("approvals") or (j > 0 and stages[j - 1].get("promotion") == "manual"):
            manual.append(j)
    return manual


def automation_level(document: dict[str, Any] | None) -> str:
    """`none` for no valid document, else `manual`, `partial` or `full`."""
    if document is None:
        return "none"
    transitions = len(document.get("stages", []))
    manual = len(manual_transitions(document))
    if manual == 0:
        return "full"
    return "manual" if manual == transitions else "partial"


def lowest_level(levels: list[str]) -> str:
    """The lowest of `levels`; `none` when there are none (a team without pipelines)."""
    if not levels:
        return "none"
    return min(levels, key=AUTOMATION_LEVELS.index)
