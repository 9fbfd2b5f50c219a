"""The read model: what `status`, `executions` and `events` show, as the JSON of engine.md
("Status JSON", "Events"), computed from the store alone.

Pure reads of an `EngineStore`; the clock is a parameter (`now` decides which overrides are
active), never read here. The web API and the dashboard serve these dicts as they are; the CLI
prints them or renders them as tables.

Which run is a stage's `execution` (engine.md): the run occupying the stage, or holding it
`failed` or `awaiting_promotion`, else the one waiting at its entry. Per execution only its
latest run of the stage counts (a `retry` starts a new run; the failed one it replaces holds
nothing any more). A `failed` run holds the stage only when it deployed and no run deployed to
the stage after it (a newer execution deploying over it is the fix forward). `next` is the
newest execution waiting at the entry when `execution` is another one.

Gates shown: for a run still at its entry, every gate evaluated; for a run past its entry, the
gates that still judge it (`bake_time`, `datapoints`, and `alarms`, which is watched from the
deploy to the end of the bake): the entry gates it passed are history (`executions show` and the
events keep them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pipewarden.engine.domain.errors import NotFound
from pipewarden.engine.domain.gates import GATES, GateResult
from pipewarden.engine.domain.ids import format_optional_time, format_time, parse_execution_id
from pipewarden.engine.domain.overrides import Override
from pipewarden.engine.domain.status import OCCUPYING, StageRunStatus
from pipewarden.engine.store import EngineStore, ExecutionRecord, HostRecord, PipelineRecord, StageRunRecord
from pipewarden.model.hosts import host_key
from pipewarden.model.view import StageView, pipeline_view

DEFAULT_LIMIT = 50
"""`executions list` without `--limit`."""

_JUDGING_AFTER_ENTRY = frozenset({spec.name for spec in GATES if spec.phase == "bake"} | {"alarms"})

S = StageRunStatus


# ---------------------------------------------------------------- status


def pipeline_status(store: EngineStore, name: str, *, now: datetime) -> dict[str, Any]:
    """`status PIPELINE --format json`; NotFound when the store has no such pipeline."""
    record = store.pipeline(name)
    if record is None:
        raise NotFound(f"no pipeline {name!r}")
    return _status(store, record, now)


def all_status(store: EngineStore, *, now: datetime) -> dict[str, Any]:
    """`status --format json` without a pipeline: every pipeline, by name."""
    return {"pipelines": [_status(store, record, now) for record in store.pipelines()]}


def pipeline_list(store: EngineStore, *, now: datetime) -> dict[str, Any]:
    """`GET /api/v1/pipelines` (server.md: name, team, org, paused, and per stage the artifact and
    status): each pipeline's status object with `name` beside `pipeline`, and per stage `artifact`
    (the artifact most of the stage's hosts run; null when none runs one) and `status` (the status
    of the stage's execution, null when none)."""
    listed = []
    for entry in all_status(store, now=now)["pipelines"]:
        for stage in entry["stages"]:
            running = Counter(host["artifact"] for target in stage["targets"] for host in target["hosts"]
                              if host["artifact"] is not None)
            stage["artifact"] = running.most_common(1)[0][0] if running else None
            stage["status"] = stage["execution"]["status"] if stage["execution"] else None
        listed.append({"name": entry["pipeline"], **entry})
    return {"pipelines": listed}


def _status(store: EngineStore, record: PipelineRecord, now: datetime) -> dict[str, Any]:
    stages = _stages(record)
    hosts = store.hosts(record.name)
    runs = _by_stage(store.stage_runs(pipeline=record.name))
    overrides = [o for o in store.overrides(pipeline=record.name) if o.active_at(now)]
    executions: dict[str, ExecutionRecord | None] = {}
    out = []
    for stage in stages:
        holder, waiting = stage_occupants(runs.get(stage.name, []))
        current = holder or waiting
        following = waiting if holder is not None and waiting is not None else None
        out.append({
            "name": stage.name,
            "type": stage.type,
            "targets": _targets(stage, hosts),
            "execution": None if current is None else _run_json(store, current, executions, judging_only=True),
            "next": None if following is None else _run_json(store, following, executions, judging_only=True),
            "overrides": _overrides(overrides, stage.name),
        })
    return {"pipeline": record.name, "team": record.team, "org": record.org, "paused": record.paused,
            "stages": out}


def _stages(record: PipelineRecord) -> tuple[StageView, ...]:
    """The stages of the newest valid definition the poller read (none before it read one)."""
    if record.definition is None:
        return ()
    return pipeline_view(record.definition).stages


def _by_stage(runs: Iterable[StageRunRecord]) -> dict[str, list[StageRunRecord]]:
    grouped: dict[str, list[StageRunRecord]] = {}
    for run in runs:
        grouped.setdefault(run.stage, []).append(run)
    return grouped


def stage_occupants(runs: Sequence[StageRunRecord]) -> tuple[StageRunRecord | None, StageRunRecord | None]:
    """(the run holding the stage, the newest run waiting at its entry) among one stage's runs
    in store order (see the module docstring)."""
    latest: dict[str, StageRunRecord] = {}
    for run in runs:
        latest[run.execution] = run  # store order is id order: the last one is the newest attempt
    last_deployed = max((run.id for run in runs if run.deployed), default=None)
    holding = [run for run in latest.values()
               if run.status in OCCUPYING or run.status is S.AWAITING_PROMOTION
               or (run.status is S.FAILED and run.deployed and run.id == last_deployed)]
    waiting = [run for run in latest.values() if run.status is S.WAITING]
    holder = max(holding, key=lambda run: run.id, default=None)
    newest_waiting = max(waiting, key=lambda run: _number(run.execution), default=None)
    return holder, newest_waiting


def _number(execution: str) -> int:
    return parse_execution_id(execution)[1]


def _targets(stage: StageView, hosts: Mapping[str, HostRecord]) -> list[dict[str, Any]]:
    out = []
    for target in stage.targets:
        rows = []
        for host in target.hosts:
            known = hosts.get(host_key(host))
            # A host nothing was deployed to yet runs no artifact of ours and is not failing: ok.
            rows.append({"host": host, "artifact": None if known is None else known.artifact,
                         "state": "ok" if known is None else known.state})
        out.append({"name": target.name, "hosts": rows})
    return out


def _overrides(overrides: Iterable[Override], stage: str) -> list[dict[str, Any]]:
    return [o.to_json() for o in overrides if o.stage == stage]


def _run_json(store: EngineStore, run: StageRunRecord, executions: dict[str, ExecutionRecord | None], *,
              judging_only: bool) -> dict[str, Any]:
    if run.execution not in executions:
        executions[run.execution] = store.execution(run.execution)
    execution = executions[run.execution]
    gates = store.gate_evaluations(run.id)
    if judging_only and run.deployed:
        gates = {gate: result for gate, result in gates.items() if gate in _JUDGING_AFTER_ENTRY}
    return {
        "id": run.execution,
        "artifact": run.artifact if run.artifact is not None else (execution.artifact if execution else None),
        "commit": execution.commit if execution is not None else None,
        "status": str(run.status),
        "gates": _gates(gates),
    }


def _gates(gates: Mapping[str, GateResult]) -> list[dict[str, Any]]:
    return [result.to_json(gate) for gate, result in gates.items()]


# ---------------------------------------------------------------- executions


def execution_json(record: ExecutionRecord) -> dict[str, Any]:
    """One execution as `executions list --format json` writes it: engine.md's keys, and `reason`
    (why it ended as it did, as its `execution_finished` event says: a failed build, a gate, a
    hook; null while it runs and when it succeeded)."""
    return {
        "id": record.id,
        "pipeline": record.pipeline,
        "commit": record.commit,
        "artifact": record.artifact,
        "status": str(record.status),
        "stage": record.stage,
        "started": format_time(record.started),
        "finished": format_optional_time(record.finished),
        "reason": record.reason,
    }


def executions_list(store: EngineStore, *, pipeline: str | None = None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """`executions list --format json`: newest first, at most `limit`."""
    return {"executions": [execution_json(record) for record in store.executions(pipeline=pipeline, limit=limit)]}


def execution_show(store: EngineStore, ident: str) -> dict[str, Any]:
    """`executions show ID --format json`: the execution, every stage of its definition for this
    execution (status `pending` where it has no run), and its events. NotFound for an unknown id.

    The definition is the one the execution follows (its own commit's `pipeline.yaml`, kept by
    its policy gate), or, before that gate read one, the pipeline's newest valid one; a stage this
    execution ran that the definition does not have is listed after the others, without targets.
    """
    record = store.execution(ident)
    if record is None:
        raise NotFound(f"no execution {ident!r}")
    own = store.execution_definition(ident)
    pipeline = store.pipeline(record.pipeline)
    stages = pipeline_view(own).stages if own is not None else _stages(pipeline) if pipeline is not None else ()
    hosts = store.hosts(record.pipeline)
    runs = _by_stage(store.stage_runs(execution=ident))
    executions: dict[str, ExecutionRecord | None] = {ident: record}
    out = []
    for stage in stages:
        out.append(_execution_stage(store, record, stage.name, stage.type, _targets(stage, hosts),
                                    runs.pop(stage.name, []), executions))
    for name, left in runs.items():
        out.append(_execution_stage(store, record, name, None, [], left, executions))
    return {**execution_json(record), "stages": out, "events": events(store, execution=ident)}


def _execution_stage(store: EngineStore, record: ExecutionRecord, name: str, kind: str | None,
                     targets: list[dict[str, Any]], runs: Sequence[StageRunRecord],
                     executions: dict[str, ExecutionRecord | None]) -> dict[str, Any]:
    if runs:
        run = runs[-1]
        execution = _run_json(store, run, executions, judging_only=False)
        execution.update({"attempt": run.attempt, "started": format_time(run.started),
                          "finished": format_optional_time(run.finished), "reason": run.reason})
    else:
        execution = {"id": record.id, "artifact": record.artifact, "commit": record.commit,
                     "status": str(S.PENDING), "gates": [], "attempt": None, "started": None, "finished": None,
                     "reason": None}
    return {"name": name, "type": kind, "targets": targets, "execution": execution}


# ---------------------------------------------------------------- events


def events(store: EngineStore, *, pipeline: str | None = None, execution: str | None = None,
           since: datetime | None = None, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Audit events in `seq` order as the 12-key objects of engine.md (`events --format jsonl`)."""
    return [event.to_json() for event in store.events(pipeline=pipeline, execution=execution, since=since,
                                                      after_seq=after, limit=limit)]
