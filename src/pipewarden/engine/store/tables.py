"""The engine store's tables, in SQLAlchemy Core (2.x), portable to SQLite and PostgreSQL.

Times are kept as the text engine.md writes (`2026-12-01T15:04:00.125Z`, `domain.ids.format_time`):
fixed width, so comparing the text compares the times, on either database, and what the store
holds is exactly what events and the API show. JSON values (`events.data`, gate `inputs`) are
JSON text, as engine.md asks of `events.data`.

Status columns carry CHECK constraints with engine.md's closed value sets, so a bad write fails in
the database too, whatever code made it.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from pipewarden.engine.domain.status import ExecutionStatus, StageRunStatus

SCHEMA_VERSION = 1
"""Written into `store_meta`; Alembic migrations (a later step) start from it."""

HOST_STATES = ("ok", "deploying", "failed")
HISTORY_KINDS = ("bake_passed", "rolled_back")

metadata = MetaData()

TIME = 24  # len("2026-12-01T15:04:00.125Z")


def _in(column: str, values: tuple[str, ...] | list[str]) -> CheckConstraint:
    quoted = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=f"ck_{column}_values")


store_meta = Table(
    "store_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

pipelines = Table(
    "pipelines", metadata,
    Column("name", String(63), primary_key=True),
    Column("last_commit", String(40), nullable=True),   # the last commit the poller released
    Column("repo", Text, nullable=True),                # where the poller reads it (EngineConfig)
    Column("branch", String(255), nullable=True),
    Column("path", Text, nullable=True),                # the pipeline file inside the repository
    Column("definition", Text, nullable=True),          # JSON: the newest valid definition read
    Column("definition_commit", String(40), nullable=True),
    Column("team", String(200), nullable=True),
    Column("org", String(200), nullable=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("paused_by", String(200), nullable=True),
    Column("paused_reason", Text, nullable=True),
    Column("updated", String(TIME), nullable=False),
)

executions = Table(
    "executions", metadata,
    Column("id", String(80), primary_key=True),          # PIPELINE-N
    Column("pipeline", String(63), ForeignKey("pipelines.name"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("commit", String(40), nullable=False),
    Column("artifact", String(12), nullable=True),        # null until built
    Column("status", String(20), nullable=False),
    Column("trigger", String(16), nullable=False),        # poll | release
    Column("stage", String(200), nullable=True),          # the stage of the latest stage run
    Column("started", String(TIME), nullable=False),
    Column("finished", String(TIME), nullable=True),
    Column("reason", Text, nullable=True),
    Column("idempotency_key", String(300), nullable=True, unique=True),
    UniqueConstraint("pipeline", "number", name="uq_executions_pipeline_number"),
    _in("status", [str(s) for s in ExecutionStatus]),
    CheckConstraint("trigger IN ('poll', 'release')", name="ck_trigger_values"),
)
Index("ix_executions_started", executions.c.started)

execution_definitions = Table(
    # The definition an execution follows: the valid `pipeline.yaml` of its own commit, as the
    # policy gate read it (`executions show` lists its stages, not those of the newest definition).
    "execution_definitions", metadata,
    Column("execution", String(80), primary_key=True),
    Column("definition", Text, nullable=False),          # JSON
)

stage_runs = Table(
    "stage_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution", String(80), ForeignKey("executions.id"), nullable=False),
    Column("pipeline", String(63), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),           # 1, then + 1 per `retry`
    Column("status", String(20), nullable=False),
    Column("artifact", String(12), nullable=True),
    Column("started", String(TIME), nullable=False),
    Column("finished", String(TIME), nullable=True),
    Column("deployed", Boolean, nullable=False, default=False),  # got past its entry gates
    Column("bake_started", String(TIME), nullable=True),
    Column("bake_passed", String(TIME), nullable=True),
    Column("reason", Text, nullable=True),
    UniqueConstraint("execution", "stage", "attempt", name="uq_stage_runs_attempt"),
    _in("status", [str(s) for s in StageRunStatus]),
)
Index("ix_stage_runs_stage", stage_runs.c.pipeline, stage_runs.c.stage)

host_artifacts = Table(
    "host_artifacts", metadata,
    Column("pipeline", String(63), primary_key=True),
    Column("host_key", String(300), primary_key=True),    # model.hosts.host_key(host)
    Column("host", String(300), nullable=False),           # as the pipeline file writes it
    Column("stage", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("artifact", String(12), nullable=True),         # last deploy whose every hook succeeded
    Column("state", String(10), nullable=False),
    Column("deploying_artifact", String(12), nullable=True),
    Column("execution", String(80), nullable=True),        # the execution that touched it last
    Column("updated", String(TIME), nullable=False),
    _in("state", HOST_STATES),
)

gate_evaluations = Table(
    "gate_evaluations", metadata,
    Column("stage_run", Integer, ForeignKey("stage_runs.id"), primary_key=True),
    Column("gate", String(32), primary_key=True),
    Column("result", String(4), nullable=False),
    Column("code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("until", String(TIME), nullable=True),
    Column("inputs", Text, nullable=False),                # JSON object
    Column("first_evaluated", String(TIME), nullable=False),
    Column("evaluated", String(TIME), nullable=False),
    Column("changed", String(TIME), nullable=False),       # last change of result or code
    CheckConstraint("result IN ('pass', 'wait', 'fail')", name="ck_result_values"),
)

hook_runs = Table(
    "hook_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False),            # from the workflow id and the activity id
    Column("attempt", Integer, nullable=False),
    Column("execution", String(80), nullable=False),
    Column("pipeline", String(63), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("host", String(300), nullable=False),
    Column("host_key", String(300), nullable=False),
    Column("hook", String(10), nullable=False),
    Column("artifact", String(12), nullable=False),
    Column("rollback", Boolean, nullable=False, default=False),
    Column("started", String(TIME), nullable=False),
    Column("finished", String(TIME), nullable=True),       # null: running, or cut off by a crash
    Column("exit_code", Integer, nullable=True),
    Column("timed_out", Boolean, nullable=False, default=False),
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("duration_ms", Integer, nullable=True),
    Column("log", Text, nullable=True),
    Column("pgid", Integer, nullable=True),                # process group, to kill a leftover one
    UniqueConstraint("key", "attempt", name="uq_hook_runs_key_attempt"),
    CheckConstraint("hook IN ('stop', 'install', 'start', 'validate')", name="ck_hook_values"),
)
Index("ix_hook_runs_artifact", hook_runs.c.pipeline, hook_runs.c.stage, hook_runs.c.artifact)

deploy_halts = Table(
    # A running deploy activity (A_DEPLOY) reads its key before each hook: once a row is here it
    # starts no new hook (`cancel`, the alarms tripwire). Written by the workflow's `halt_deploy`.
    "deploy_halts", metadata,
    Column("key", String(400), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("time", String(TIME), nullable=False),
)

host_leases = Table(
    # One hook per host at a time, across all workers and pipelines (engine.md, "One hook per host").
    "host_leases", metadata,
    Column("host_key", String(300), primary_key=True),   # model.hosts.host_key(host)
    Column("holder", String(400), nullable=False),       # the hook run's key (workflow id / activity id)
    Column("attempt", Integer, nullable=False),
    Column("acquired", String(TIME), nullable=False),
    Column("expires", String(TIME), nullable=False),
)

overrides = Table(
    "overrides", metadata,
    Column("pipeline", String(63), primary_key=True),
    Column("stage", String(200), primary_key=True),
    Column("gate", String(32), primary_key=True),          # a new override replaces the old one
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("granted", String(TIME), nullable=False),
    Column("expires", String(TIME), nullable=False),
)

target_history = Table(
    "target_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),   # the order of the history
    Column("pipeline", String(63), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("artifact", String(12), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", String(TIME), nullable=False),
    _in("kind", HISTORY_KINDS),
)
Index("ix_target_history_stage", target_history.c.pipeline, target_history.c.stage)

events = Table(
    "events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", String(TIME), nullable=False),
    Column("type", String(32), nullable=False),
    Column("pipeline", String(63), nullable=True),
    Column("execution", String(80), nullable=True),
    Column("stage", String(200), nullable=True),
    Column("target", String(200), nullable=True),
    Column("host", String(300), nullable=True),
    Column("actor", String(200), nullable=False),
    Column("data", Text, nullable=False),                  # JSON object as text
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # Not part of the event (nor of its hash): what makes a retried append write nothing.
    Column("idempotency_key", String(400), nullable=True, unique=True),
)
Index("ix_events_pipeline", events.c.pipeline, events.c.seq)
Index("ix_events_execution", events.c.execution, events.c.seq)

synthetic_results = Table(
    # One row per synthetic request (engine.md "Synthetics"); what `source: synthetic` counts. Kept
    # for a retention period (7 days by default), pruned by the synthetics runner.
    "synthetic_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(63), nullable=False),
    Column("synthetic", String(200), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("host", String(300), nullable=False),           # as the pipeline file writes it
    Column("host_key", String(300), nullable=False),       # model.hosts.host_key(host)
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("time", String(TIME), nullable=False),          # when the request was sent
    Column("success", Boolean, nullable=False),
    Column("status", Integer, nullable=True),              # null: no response (timeout, refused ...)
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)
# Counting (`synthetic_counts`: equality on the first four, a range on time) and the newest request
# to a host (`synthetic_last_seen`) are index-only range scans of this one index.
Index("ix_synthetic_results_count", synthetic_results.c.pipeline, synthetic_results.c.synthetic,
      synthetic_results.c.host_key, synthetic_results.c.success, synthetic_results.c.time)
Index("ix_synthetic_results_time", synthetic_results.c.time)   # pruning

alarm_states = Table(
    # The alarm evaluator's state of each alarm of each stage (engine.md "Gates", `alarms`): written
    # by the server every poll.gates, read by the entry gates and the tripwire. Not audit events.
    "alarm_states", metadata,
    Column("pipeline", String(63), primary_key=True),
    Column("stage", String(200), primary_key=True),
    Column("alarm", String(200), primary_key=True),
    Column("state", Text, nullable=False),                 # AlarmState.to_json() as JSON text
    Column("evaluated", String(TIME), nullable=False),
)

chain_head = Table(
    "chain_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="ck_chain_head_single_row"),
)
