"""The answers of the OPA decision API (server.md, "OPA"), from the engine's own code.

- `release`: may an artifact of a commit enter a pipeline's stage now? The entry gates exactly as
  the engine judges them for an execution (`EngineActivities.judge_entry_gates`: the same
  observations, gates, order and overrides), without recording anything: a decision has no
  stage run, and asking must not change what the engine does.
- `check`: the findings `check` gives for a pipeline document sent as JSON, under the server's
  org config and policies (`evaluation.gate.check_document`, the function the `policy` gate and
  `check` use), evaluated on the policy gate's own threads.

Both return plain JSON values (the web layer wraps them in OPA's `{"result": ...}`); they block
(git, the store, Rego), so async callers run them in a thread.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from pipewarden.engine.activities.artifacts import ArtifactError
from pipewarden.engine.activities.engine import _POLICY_THREADS, EngineActivities, EntryJudgement
from pipewarden.engine.client import DEFAULT_PIPELINE_PATH, resolve_commit
from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.ids import artifact_id
from pipewarden.errors import ConfigError, PolicyError
from pipewarden.evaluation.gate import check_document

CHECK_DOCUMENT_NAME = "input"
"""The `file` the findings of a checked document name (it has no file: it is OPA's `input`)."""

EXECUTIONS_SEARCHED = 1000
"""How many of a pipeline's newest executions are searched for one of the commit (its approvals)."""

_COMMIT = re.compile(r"[0-9a-fA-F]{4,40}")


class DecisionError(Exception):
    """The server cannot decide now (its org config or policies do not load): not the asker's
    fault, and never a silent allow."""


class Decisions:
    """The decision API's answers over one engine's activities (its store, artifact store, org
    config and policies); `poll_gates_seconds` as the engine's config says (how old a stored
    alarm state may be)."""

    def __init__(self, activities: EngineActivities, *, poll_gates_seconds: int) -> None:
        self.activities = activities
        self.poll_gates_seconds = poll_gates_seconds

    def release(self, pipeline: str, stage: str, commit: str, *, now: datetime) -> dict[str, Any]:
        """`{"allow", "reason", "pipeline", "stage", "commit", "artifact", "execution", "gates"}`.

        `allow` is true only when every entry gate passes now. `gates`: the gate objects of the
        status JSON (`gate`, `result`, `code`, `reason`, `until`) in engine.md's order. `commit`:
        the full name of the commit asked about (null when it is not in the repository);
        `execution`: the newest execution of that commit, whose approvals count and whose own
        occupancy of the stage does not make it busy (null: none, so no approval is given yet).
        A pipeline the engine does not know, a commit not in its repository or a stage its
        definition lacks is `allow: false` with the reason and no (or the judged) gates.
        InvalidValue for a commit name that is not hex."""
        answer: dict[str, Any] = {"allow": False, "reason": "", "pipeline": pipeline, "stage": stage,
                                  "commit": None, "artifact": None, "execution": None, "gates": []}
        record = self.activities.store.pipeline(pipeline)
        if record is None:
            return {**answer, "reason": f"the engine releases no pipeline named {pipeline!r}"}
        if record.repo is None:
            return {**answer, "reason": f"pipeline {pipeline} has no repository yet (the poller has not read it)"}
        if _COMMIT.fullmatch(commit) is None:
            raise InvalidValue(f"input.commit {commit!r} is not a commit name (4 to 40 hex digits)")
        try:
            full = resolve_commit(record.repo, commit)
        except (InvalidValue, ArtifactError):
            return {**answer, "reason": f"commit {commit} is not in the repository of pipeline {pipeline}"}
        execution = self._execution_of(pipeline, full)
        judged = self.activities.judge_entry_gates(
            pipeline=pipeline, stage=stage, repo=record.repo, commit=full,
            pipeline_path=record.path or DEFAULT_PIPELINE_PATH, execution=execution, approvals_required=None,
            approvals_given=(), poll_gates_seconds=self.poll_gates_seconds, now=now)
        gates = [result.to_json(name) for name, result in judged.results]
        answer.update(commit=full, artifact=artifact_id(full), execution=execution, gates=gates)
        if judged.view is not None and judged.stage is None:
            names = ", ".join(s.name for s in judged.view.stages)
            return {**answer, "reason": f"the definition at commit {full[:12]} has no stage {stage!r} ({names})"}
        return {**answer, "allow": judged.allowed, "reason": _reason(judged)}

    def _execution_of(self, pipeline: str, commit: str) -> str | None:
        """The newest (by N) of the pipeline's executions of `commit`, None when there is none."""
        found = [e for e in self.activities.store.executions(pipeline=pipeline, limit=EXECUTIONS_SEARCHED)
                 if e.commit == commit]
        return max(found, key=lambda e: e.number).id if found else None

    def check(self, document: object, *, now: datetime) -> dict[str, Any]:
        """`{"findings", "allow", "pipeline"}` for a pipeline document (any JSON value):
        `findings` as `check --format json` gives them for that document (file `input`, lines
        counted in the document as JSON with two-space indentation, as `jq .input` prints it;
        no other pipelines: fleet rules see it alone, as `check FILE` does); `allow`: no
        finding blocks (none at `enforce` that is not excepted); `pipeline`: its entry of
        `check`'s `pipelines`. A document that is not a valid pipeline gets `check`'s
        `valid-definition` findings. DecisionError when the org config or policies do not load."""
        source = (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")
        activities = self.activities
        try:
            # On the policy gate's threads, as its evaluations: one Rego engine per thread.
            checked = _POLICY_THREADS.submit(check_document, source, CHECK_DOCUMENT_NAME,
                                             org_config=activities.org_config, policies=activities.policies,
                                             now=now).result()
        except (ConfigError, PolicyError) as error:
            raise DecisionError(f"the server's org config or policies cannot be used now: {error}") from error
        return {"findings": [f.to_json() for f in checked.findings], "allow": checked.allowed,
                "pipeline": checked.pipeline.to_json()}


def _reason(judged: EntryJudgement) -> str:
    """The decision in one line: the first gate that fails, else the first that waits (as the
    engine's workflow names them), else that every gate passes."""
    for wanted in ("fail", "wait"):
        for name, result in judged.results:
            if str(result.result) == wanted:
                return f"{name}: {result.reason}"
    return "every entry gate passes"
