"""What a stage's rollback plan is made from, read ahead while its bake waits (issue 14).

A rollback plan (EngineActivities.plan_rollback) needs the replaced artifact's definition of the
stage, the stage's target history, the hosts on which the replaced artifact ran hooks and the
records of the artifacts it could restore. None of these changes while the stage bakes: the
deploy has finished, and only the run occupying the stage writes its history. What can change
(an artifact's content corrupted, a blocklist entry added, an override) is judged again when the
rollback begins. So a bake that `rolls_back` reads the inputs after a round that did not fail, off
the way to the rollback, and a failing round hands them to its rollback: with 100 bakes failing
at once, the plan's reads were a fifth of the server's interpreter time between the failing
round and the first rollback hook (benchmarks/RESULTS.md, issue 14).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipewarden.engine.activities.artifacts import ArtifactRecord, ArtifactStore
from pipewarden.engine.domain.rollback import TargetEvent
from pipewarden.engine.store import EngineStore
from pipewarden.model.view import StageView, pipeline_view


@dataclass(frozen=True)
class PlanInputs:
    """The reads a rollback plan of `stage` away from `replacing` starts from (see the module)."""

    pipeline: str
    replacing: str
    stage: StageView | None
    """The stage as the replaced artifact's definition has it; None: no such stage or no record
    (nothing to roll back)."""
    history: tuple[TargetEvent, ...]
    touched: tuple[str, ...]
    """The hosts on which any hook of `replacing` ran."""
    records: Mapping[str, ArtifactRecord | None]
    """The record of each artifact of the history (and `to`), None where it is missing."""


def read_inputs(store: EngineStore, artifacts: ArtifactStore, pipeline: str, stage: str, replacing: str,
                to: str | None = None) -> PlanInputs:
    """The inputs of the plan of `stage` of `pipeline` away from `replacing` (with `--to` `to`),
    read now: a record file, its definition viewed, and two store reads."""
    replaced = artifacts.record(replacing)
    if replaced is None or replaced.document is None:
        return PlanInputs(pipeline, replacing, None, (), (), {})
    view = next((s for s in pipeline_view(replaced.document).stages if s.name == stage), None)
    if view is None:
        return PlanInputs(pipeline, replacing, None, (), (), {})
    history = tuple(store.target_history(pipeline, stage))
    candidates = {event.artifact for event in history} | ({to} if to else set())
    touched = tuple(store.hosts_with_hooks(pipeline, stage, replacing))
    return PlanInputs(pipeline, replacing, view, history, touched,
                      {artifact: artifacts.record(artifact) for artifact in sorted(candidates)})


class PreparedInputs:
    """The inputs read ahead for the rollback of each baking stage run of this process, by stage
    run id, kept only while a bake activity of that run is open here (`open` / `close`): a round
    still running when its bake was cancelled keeps nothing. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inputs: dict[int, PlanInputs] = {}
        self._open: dict[int, int] = {}

    def open(self, run_id: int) -> None:
        """A bake activity of `run_id` starts here (a `wake` may start the next before the last
        one closed)."""
        with self._lock:
            self._open[run_id] = self._open.get(run_id, 0) + 1

    def close(self, run_id: int) -> None:
        """A bake activity of `run_id` ended; with the last one, its inputs are forgotten."""
        with self._lock:
            left = self._open.get(run_id, 0) - 1
            if left > 0:
                self._open[run_id] = left
                return
            self._open.pop(run_id, None)
            self._inputs.pop(run_id, None)

    def prepare(self, run_id: int, read: Callable[[], PlanInputs]) -> None:
        """Read (`read()`) and keep the inputs of `run_id` unless they are kept already, or no
        bake of it is open, or they found nothing to roll back (read again next time)."""
        with self._lock:
            if run_id in self._inputs or run_id not in self._open:
                return
        inputs = read()
        if inputs.stage is None:
            return
        with self._lock:
            if run_id in self._open:
                self._inputs.setdefault(run_id, inputs)

    def take(self, run_id: int) -> PlanInputs | None:
        """The inputs kept for `run_id` (no longer kept), or None."""
        with self._lock:
            return self._inputs.pop(run_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._inputs)
