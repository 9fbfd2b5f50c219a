"""`EngineStore`: the engine's typed reads and writes over one SQLAlchemy `Engine`.

**Writes are serialised.** Every write runs in `_write()`: on SQLite the transaction starts with
`BEGIN IMMEDIATE` (it takes the database's write lock at once, so two processes never both read the
chain head and then race to write it; the other waits up to the busy timeout), and on other
databases its first statement reads the one `chain_head` row `FOR UPDATE` (PostgreSQL locks the
row, so its writers queue there under READ COMMITTED; SQLite, which renders no FOR UPDATE, needs
no such read under its write lock). Inside
that lock an append reads the head, checks its idempotency key, writes the event with the next
`seq` and the new hash, and moves the head, all in one transaction: `seq` stays gap-free and the
chain valid across processes and crashes. Whatever else a write changes (a hook run's result, a
status) commits in the same transaction as its event, so neither is ever without the other.

Within one process, writers to SQLite take turns on a lock before they take a connection
(`_local_writer`): SQLite's own busy handler polls with sleeps, which made the waits of many
writing threads long and unfair.

**SQLite settings, and why.** `journal_mode=WAL`: readers (status, events) never block the writer
nor wait for it. `synchronous=FULL`: in WAL mode, NORMAL may lose the last transactions on a power
loss or OS crash (they are in the WAL but not yet synced); the engine promises that a committed hook
result and its event survive any crash, because a hook that looks uncommitted runs again, so each
commit syncs the WAL. `foreign_keys=ON`; `busy_timeout` of 30 s for waiting writers. The pysqlite
driver's own transaction handling is switched off (it would not BEGIN before a SELECT), and the
store emits BEGIN itself, as SQLAlchemy's SQLite documentation describes.

Nothing in the queries is SQLite-only: plain Core selects, inserts and updates; no INSERT OR
IGNORE / ON CONFLICT (idempotency is a read inside the serialised write), no JSON functions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy import Connection, Engine, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Row, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from pipewarden.engine.domain import overrides as override_rules
from pipewarden.engine.domain import supersede
from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.domain.events import (
    ENGINE_ACTOR,
    ChainBreak,
    ChainHead,
    Event,
    EventDraft,
    draft,
    find_break,
    seal,
)
from pipewarden.engine.domain.gates.alarms import AlarmState
from pipewarden.engine.domain.gates.base import GateOutcome, GateResult, outcome_changed
from pipewarden.engine.domain.gates.stage_busy import Occupant
from pipewarden.engine.domain.ids import (
    ZERO_HASH,
    check_commit,
    check_pipeline_name,
    execution_id,
    format_optional_time,
    format_time,
    parse_time,
)
from pipewarden.engine.domain.overrides import Override
from pipewarden.engine.domain.rollback import BakePassed, RolledBackFrom, TargetEvent
from pipewarden.engine.domain.status import (
    OCCUPYING,
    STAGE_RUN_INITIAL,
    TERMINAL_EXECUTION,
    TERMINAL_STAGE_RUN,
    ExecutionStatus,
    StageRunStatus,
    transition,
)
from pipewarden.engine.domain.supersede import Rivals, RunAtStage
from pipewarden.engine.store import tables as t
from pipewarden.engine.store.latest import LATEST_FIELDS, PendingGates
from pipewarden.engine.store.records import (
    ExecutionRecord,
    HookRunRecord,
    HookRunStart,
    HostRecord,
    PipelineRecord,
    StageRunRecord,
    SyntheticResult,
)
from pipewarden.engine.store.writer import RemoteWriter
from pipewarden.model.hosts import host_key

BUSY_TIMEOUT_SECONDS = 30
PRUNE_BATCH = 10_000
"""Rows one pruning transaction deletes at most: a large backlog never holds the write lock long."""


SQLITE_POOL_SIZE = 16
SQLITE_POOL_OVERFLOW = 48


def default_url(state_dir: Path) -> str:
    """The default store: `engine.db` in the state dir."""
    return f"sqlite:///{Path(state_dir).resolve() / 'engine.db'}"


def _time(text: str) -> datetime:
    return parse_time(text)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


# ---------------------------------------------------------------- prebuilt statements
#
# The hot paths' statements are built once, here, with bindparams, and executed with a parameter
# dict. With 100 executions rolling back at once, building Core statements per call (coercions,
# operator overloads, cache keys) was the server's main Python cost (py-spy): a select of a hook run
# by key and attempt cost ~220 µs built per call, ~40 µs built once (raw sqlite3: 6 µs).
# SQLAlchemy compiles each statement once per set of parameter keys and caches it, and a statement
# object memoizes its cache key. The SQL and parameters sent are the same as before.
#
# An UPDATE is built without .values(): the parameters named after columns are what it SETs (one
# compiled form per set of columns, so a statement whose columns vary per call is still built
# once); its WHERE bindparams are named `w_...`, since a bindparam may not share a SET column's
# name. An INSERT takes its columns from the parameters the same way.
#
# Measured (process time per call, 500 calls, best of 5-7 runs, a store on SQLite in a temp dir):
# begin_hook_run + set_hook_pgid + finish_hook_run 4.9 -> 1.9 ms, record_gates of 3 gates
# 2.6 -> 1.0 ms, set_stage_run_status 0.86 -> 0.37 ms, acquire + release_host_lease 1.1 -> 0.47 ms,
# stage_run, host_lease, alarm_states 200 -> 110-130 µs (the rest of a read is the transaction).

_EVENT_BY_KEY = select(t.events).where(t.events.c.idempotency_key == bindparam("key"))
_HEAD = select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1)
_LOCK_HEAD = select(t.chain_head.c.seq).where(t.chain_head.c.id == 1).with_for_update()
_INSERT_EVENT = insert(t.events)
_UPDATE_HEAD = update(t.chain_head).where(t.chain_head.c.id == 1)

_STAGE_RUN = select(t.stage_runs).where(t.stage_runs.c.id == bindparam("id"))
_UPDATE_STAGE_RUN = update(t.stage_runs).where(t.stage_runs.c.id == bindparam("w_id"))

_GATE_OUTCOMES = select(t.gate_evaluations.c.gate, t.gate_evaluations.c.result, t.gate_evaluations.c.code).where(
    t.gate_evaluations.c.stage_run == bindparam("stage_run"))
"""What deciding on a `gate` event needs (domain/gates/base.py `outcome_changed`): no inputs to parse."""
_INSERT_GATE_EVALUATION = insert(t.gate_evaluations)
_UPDATE_GATE_EVALUATION = update(t.gate_evaluations).where(
    t.gate_evaluations.c.stage_run == bindparam("w_stage_run"), t.gate_evaluations.c.gate == bindparam("w_gate"))
# The write-behind's update (store/latest.py): only over an older evaluation, never back in time.
_UPDATE_LATEST_GATE = update(t.gate_evaluations).where(
    t.gate_evaluations.c.stage_run == bindparam("w_stage_run"), t.gate_evaluations.c.gate == bindparam("w_gate"),
    t.gate_evaluations.c.evaluated < bindparam("w_evaluated"))

_HOST = select(t.host_artifacts).where(t.host_artifacts.c.pipeline == bindparam("pipeline"),
                                       t.host_artifacts.c.host_key == bindparam("host_key"))
_INSERT_HOST = insert(t.host_artifacts)
_UPDATE_HOST = update(t.host_artifacts).where(t.host_artifacts.c.pipeline == bindparam("w_pipeline"),
                                              t.host_artifacts.c.host_key == bindparam("w_host_key"))

_LATEST_HOOK_RUN = (select(t.hook_runs).where(t.hook_runs.c.key == bindparam("key"))
                    .order_by(t.hook_runs.c.attempt.desc()).limit(1))
_HOOK_RUN_BY_ID = select(t.hook_runs).where(t.hook_runs.c.id == bindparam("id"))
_HOOK_RUN_BY_ATTEMPT = select(t.hook_runs).where(t.hook_runs.c.key == bindparam("key"),
                                                 t.hook_runs.c.attempt == bindparam("attempt"))
_INSERT_HOOK_RUN = insert(t.hook_runs)
_UPDATE_HOOK_RUN = update(t.hook_runs).where(t.hook_runs.c.id == bindparam("w_id"))
_UPDATE_HOOK_RUN_BY_ATTEMPT = update(t.hook_runs).where(t.hook_runs.c.key == bindparam("w_key"),
                                                        t.hook_runs.c.attempt == bindparam("w_attempt"))

_DEPLOY_HALT = select(t.deploy_halts.c.reason).where(t.deploy_halts.c.key == bindparam("key"))

_HOST_LEASE = select(t.host_leases).where(t.host_leases.c.host_key == bindparam("host_key"))
_INSERT_HOST_LEASE = insert(t.host_leases)
_UPDATE_HOST_LEASE = update(t.host_leases).where(t.host_leases.c.host_key == bindparam("w_host_key"))
_DELETE_HOST_LEASE = delete(t.host_leases).where(t.host_leases.c.host_key == bindparam("w_host_key"),
                                                 t.host_leases.c.holder == bindparam("w_holder"))

_OVERRIDES = select(t.overrides).order_by(t.overrides.c.pipeline, t.overrides.c.stage, t.overrides.c.gate)
_PIPELINE_OVERRIDES = _OVERRIDES.where(t.overrides.c.pipeline == bindparam("pipeline"))

_ALARM_STATES = select(t.alarm_states.c.alarm, t.alarm_states.c.state, t.alarm_states.c.evaluated).where(
    t.alarm_states.c.pipeline == bindparam("pipeline"), t.alarm_states.c.stage == bindparam("stage"))


class _Unreadable(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


P = ParamSpec("P")
R = TypeVar("R")


def _writes(method: Callable[Concatenate[EngineStore, P], R]) -> Callable[Concatenate[EngineStore, P], R]:
    """A write method: run in the store's writer process when it has one (store/writer.py)."""
    name = method.__name__

    def write(self: EngineStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._remote is not None:
            return self._remote.call(name, args, kwargs)  # type: ignore[no-any-return]
        return method(self, *args, **kwargs)

    write.__name__, write.__qualname__, write.__doc__ = name, method.__qualname__, method.__doc__
    return write


class EngineStore:
    """The engine store at `url` (`sqlite:///PATH` or, later, `postgresql+psycopg://...`).

    Creates the tables when missing. One instance per process; it is safe to use from several
    threads (each call takes its own connection from the pool). `gate_flush_seconds`: write the
    latest values of gate evaluations that need no event that many seconds late, in batches
    (store/latest.py; None: at once, as every other write). `separate_writer`: on SQLite, make
    every write in a process of its own (store/writer.py; WriterGone when it cannot start).
    """

    def __init__(self, url: str, *, gate_flush_seconds: float | None = None, separate_writer: bool = False) -> None:
        self.url = url
        self._remote: RemoteWriter | None = None
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite:
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # More connections than SQLAlchemy's default 5 + 10: a writer waiting for SQLite's write
            # lock holds its connection meanwhile, and with 32 activity threads, the poller, the
            # alarm readers and the web app, readers (which WAL lets run beside the writer) queued
            # for a connection behind writers (benchmarks/RESULTS.md, issue 14). A SQLite
            # connection costs little.
            self.engine: Engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS},
                                                pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_OVERFLOW)
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        # SQLite serialises writers anyway; within this process they queue on a lock instead,
        # before taking a connection: a thread waiting for SQLite's own lock retries in sleeps of
        # up to 100 ms (its busy handler), so with dozens of writing threads the lock went to
        # whoever polled at the right moment and the others' waits grew long-tailed. Other
        # processes (a second worker) still meet at SQLite's lock. PostgreSQL writers queue on
        # the chain head's row lock; they only take turns here too.
        self._local_writer: AbstractContextManager[Any] = threading.RLock() if self.sqlite else nullcontext()
        self._latest = None if gate_flush_seconds is None else PendingGates(self._write_latest_gates,
                                                                             gate_flush_seconds)
        self._create()
        if separate_writer and self.sqlite:
            self._remote = RemoteWriter(url)

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> EngineStore:
        return cls(default_url(state_dir))

    def close(self) -> None:
        if self._latest is not None:
            self._latest.close()  # its last write goes through the writer: before it ends
        if self._remote is not None:
            self._remote.close()
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transactions

    def _create(self) -> None:
        # Inside the write lock: two processes opening a new file at once do not both create.
        with self.engine.connect() as conn:
            conn.execution_options(pw_write=True)
            with conn.begin():
                t.metadata.create_all(conn)
                if conn.execute(select(t.chain_head.c.id)).first() is None:
                    conn.execute(insert(t.chain_head).values(id=1, seq=0, hash=ZERO_HASH))
                    conn.execute(insert(t.store_meta).values(key="schema_version", value=str(t.SCHEMA_VERSION)))

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction holding the store's write lock (see the module docstring)."""
        with self._local_writer, self.engine.connect() as conn:
            conn.execution_options(pw_write=True)
            with conn.begin():
                if not self.sqlite:
                    # SQLite's BEGIN IMMEDIATE holds the database's write lock already, and there
                    # the read would be one more statement for the writer, each a wait for the
                    # GIL when a burst keeps the process busy (benchmarks/RESULTS.md, issue 14).
                    conn.execute(_LOCK_HEAD)
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, no lock."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # ------------------------------------------------------------ audit log

    @_writes
    def append_event(self, event_draft: EventDraft, *, key: str | None = None) -> Event:
        """Append one event: `seq`, `prev_hash` and `hash` assigned and the head moved in one
        transaction. With `key`, appending the same key again writes nothing and returns the event
        the first append wrote (a retried activity, a replayed signal)."""
        with self._write() as conn:
            return self._append(conn, event_draft, key)

    def _append(self, conn: Connection, event_draft: EventDraft, key: str | None) -> Event:
        if key is not None:
            row = conn.execute(_EVENT_BY_KEY, {"key": key}).first()
            if row is not None:
                return _event(row)
        head = conn.execute(_HEAD).one()
        sealed = seal(event_draft, head.seq + 1, head.hash)
        values = sealed.to_json()
        values["data"] = json.dumps(sealed.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        conn.execute(_INSERT_EVENT, {**values, "idempotency_key": key})
        conn.execute(_UPDATE_HEAD, {"seq": sealed.seq, "hash": sealed.hash})
        return sealed

    def event_by_key(self, key: str) -> Event | None:
        with self._read() as conn:
            row = conn.execute(select(t.events).where(t.events.c.idempotency_key == key)).first()
            return None if row is None else _event(row)

    def events(self, *, pipeline: str | None = None, execution: str | None = None, since: datetime | None = None,
               after_seq: int = 0, types: Sequence[str] | None = None, limit: int | None = None) -> list[Event]:
        """Events in `seq` order, filtered by pipeline, execution, time (`since`: at or after) and
        type, after `after_seq` (for paging and following)."""
        query = select(t.events).where(t.events.c.seq > after_seq).order_by(t.events.c.seq)
        if pipeline is not None:
            query = query.where(t.events.c.pipeline == pipeline)
        if execution is not None:
            query = query.where(t.events.c.execution == execution)
        if since is not None:
            query = query.where(t.events.c.time >= format_time(since))
        if types is not None:
            query = query.where(t.events.c.type.in_(list(types)))
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_event(row) for row in conn.execute(query)]

    def head(self) -> ChainHead:
        with self._read() as conn:
            row = conn.execute(select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1)).first()
        return ChainHead(0, ZERO_HASH) if row is None else ChainHead(row.seq, row.hash)

    def verify(self) -> ChainBreak | None:
        """The audit chain check (`audit verify`): reads every event and the recorded head from the
        store itself, in one snapshot, and gives the first place they stop matching, or None."""
        with self._read() as conn:
            head_row = conn.execute(select(t.chain_head.c.seq, t.chain_head.c.hash)
                                    .where(t.chain_head.c.id == 1)).first()
            head = None if head_row is None else ChainHead(head_row.seq, head_row.hash)
            rows = conn.execute(select(t.events).order_by(t.events.c.seq))

            def stored() -> Iterator[Event]:
                for position, row in enumerate(rows, start=1):
                    try:
                        yield _event(row)
                    except (ValueError, TypeError) as error:
                        raise _Unreadable(position, f"event {position} cannot be read: {error}") from None

            try:
                return find_break(stored(), head)
            except _Unreadable as unreadable:
                return ChainBreak(unreadable.seq, unreadable.reason)

    def refuse(self, action: str, reason: str, *, actor: str, now: datetime, pipeline: str | None = None,
               execution: str | None = None, stage: str | None = None, key: str | None = None) -> Event:
        """Record a human action that did not apply (a `refused` event)."""
        return self.append_event(draft("refused", time=now, actor=actor, pipeline=pipeline, execution=execution,
                                       stage=stage, data={"action": action, "reason": reason}), key=key)

    # ------------------------------------------------------------ pipelines

    @_writes
    def ensure_pipeline(self, name: str, *, now: datetime) -> PipelineRecord:
        with self._write() as conn:
            return self._ensure_pipeline(conn, name, now)

    def _ensure_pipeline(self, conn: Connection, name: str, now: datetime) -> PipelineRecord:
        check_pipeline_name(name)
        row = conn.execute(select(t.pipelines).where(t.pipelines.c.name == name)).first()
        if row is None:
            conn.execute(insert(t.pipelines).values(name=name, paused=False, updated=format_time(now)))
            row = conn.execute(select(t.pipelines).where(t.pipelines.c.name == name)).one()
        return _pipeline(row)

    def pipeline(self, name: str) -> PipelineRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.pipelines).where(t.pipelines.c.name == name)).first()
            return None if row is None else _pipeline(row)

    def pipeline_repo(self, name: str) -> str | None:
        """The repository the pipeline is released from (None: unknown or not registered): the
        pipeline's one column a rollback plan needs, without reading its definition."""
        with self._read() as conn:
            repo = conn.execute(select(t.pipelines.c.repo).where(t.pipelines.c.name == name)).scalar()
            return str(repo) if repo else None

    def pipelines(self) -> list[PipelineRecord]:
        with self._read() as conn:
            return [_pipeline(row) for row in conn.execute(select(t.pipelines).order_by(t.pipelines.c.name))]

    @_writes
    def set_last_commit(self, name: str, commit: str, *, now: datetime) -> None:
        """Record the last commit the poller released (so that a restart never releases it twice)."""
        check_commit(commit)
        with self._write() as conn:
            self._ensure_pipeline(conn, name, now)
            conn.execute(update(t.pipelines).where(t.pipelines.c.name == name)
                         .values(last_commit=commit, updated=format_time(now)))

    @_writes
    def set_pipeline_source(self, name: str, *, repo: str, branch: str, path: str, now: datetime) -> None:
        """Where the poller reads the pipeline (its EngineConfig entry, resolved)."""
        with self._write() as conn:
            self._ensure_pipeline(conn, name, now)
            conn.execute(update(t.pipelines).where(t.pipelines.c.name == name)
                         .values(repo=repo, branch=branch, path=path, updated=format_time(now)))

    @_writes
    def set_definition(self, name: str, definition: Mapping[str, Any], *, commit: str, team: str | None,
                       org: str | None, now: datetime) -> None:
        """The newest valid definition the poller read (status shows its stages and hosts), with
        the pipeline's team and the org node that team belongs to."""
        check_commit(commit)
        with self._write() as conn:
            self._ensure_pipeline(conn, name, now)
            conn.execute(update(t.pipelines).where(t.pipelines.c.name == name).values(
                definition=json.dumps(definition, sort_keys=True, default=str), definition_commit=commit,
                team=team, org=org, updated=format_time(now)))

    @_writes
    def set_paused(self, name: str, paused: bool, *, actor: str, now: datetime, reason: str | None = None,
                   key: str | None = None) -> Event:
        """`pause` / `resume` with its event, in one transaction. Refused when the pipeline already
        is in that state (a retried request with the same `key` returns the first event instead)."""
        with self._write() as conn:
            if key is not None:
                done = conn.execute(select(t.events).where(t.events.c.idempotency_key == key)).first()
                if done is not None:
                    return _event(done)
            current = self._ensure_pipeline(conn, name, now)
            if current.paused == paused:
                raise Refused("pause" if paused else "resume",
                              f"pipeline {name} is {'already paused' if paused else 'not paused'}")
            conn.execute(update(t.pipelines).where(t.pipelines.c.name == name).values(
                paused=paused, paused_by=actor if paused else None, paused_reason=reason if paused else None,
                updated=format_time(now)))
            return self._append(conn, draft("paused" if paused else "resumed", time=now, actor=actor, pipeline=name,
                                            data={"reason": reason}), key)

    # ------------------------------------------------------------ executions

    @_writes
    def create_execution(self, pipeline: str, commit: str, *, trigger: str, now: datetime, actor: str = ENGINE_ACTOR,
                         key: str | None = None, mark_released: bool | None = None,
                         reason: str | None = None) -> ExecutionRecord:
        """A new execution `PIPELINE-N` (N the next number of the pipeline) with its
        `execution_started` event, in one transaction (`reason`, a person's `release --reason`, in
        its data when given). With `key`, a second call returns the execution the first one made.
        A `poll` trigger also records `commit` as the pipeline's last released commit in that
        transaction (`mark_released` overrides)."""
        check_commit(commit)
        with self._write() as conn:
            if key is not None:
                row = conn.execute(select(t.executions).where(t.executions.c.idempotency_key == key)).first()
                if row is not None:
                    return _execution(row)
            self._ensure_pipeline(conn, pipeline, now)
            last = conn.execute(select(func.max(t.executions.c.number))
                                .where(t.executions.c.pipeline == pipeline)).scalar()
            number = (last or 0) + 1
            ident = execution_id(pipeline, number)
            conn.execute(insert(t.executions).values(
                id=ident, pipeline=pipeline, number=number, commit=commit, status=str(ExecutionStatus.RUNNING),
                trigger=trigger, started=format_time(now), idempotency_key=key))
            if trigger == "poll" if mark_released is None else mark_released:
                conn.execute(update(t.pipelines).where(t.pipelines.c.name == pipeline)
                             .values(last_commit=commit, updated=format_time(now)))
            self._append(conn, draft("execution_started", time=now, actor=actor, pipeline=pipeline, execution=ident,
                                     data={"commit": commit, "trigger": trigger,
                                           **({"reason": reason} if reason is not None else {})}),
                         f"{ident}:execution_started")
            return _execution(conn.execute(select(t.executions).where(t.executions.c.id == ident)).one())

    @_writes
    def set_execution_definition(self, execution: str, definition: Mapping[str, Any]) -> None:
        """Keep the definition `execution` follows (its commit's valid `pipeline.yaml`); the first
        one kept stays (a retried policy check reads the same commit)."""
        with self._write() as conn:
            found = conn.execute(select(t.execution_definitions.c.execution)
                                 .where(t.execution_definitions.c.execution == execution)).first()
            if found is None:
                conn.execute(insert(t.execution_definitions).values(
                    execution=execution, definition=json.dumps(definition, sort_keys=True, default=str)))

    def execution_definition(self, execution: str) -> dict[str, Any] | None:
        """The definition `execution` follows, None before its policy gate read a valid one."""
        with self._read() as conn:
            row = conn.execute(select(t.execution_definitions.c.definition)
                               .where(t.execution_definitions.c.execution == execution)).first()
        if row is None:
            return None
        loaded = json.loads(row.definition)
        return loaded if isinstance(loaded, dict) else None

    def next_execution_number(self, pipeline: str) -> int:
        """The N the pipeline's next execution will get (informative: `create_execution` allocates
        it inside its own transaction)."""
        with self._read() as conn:
            last = conn.execute(select(func.max(t.executions.c.number))
                                .where(t.executions.c.pipeline == pipeline)).scalar()
        return (last or 0) + 1

    def execution(self, ident: str) -> ExecutionRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.executions).where(t.executions.c.id == ident)).first()
            return None if row is None else _execution(row)

    def executions(self, *, pipeline: str | None = None, limit: int = 50) -> list[ExecutionRecord]:
        """Newest first: by start time, then by N (`executions list`)."""
        query = select(t.executions).order_by(t.executions.c.started.desc(), t.executions.c.number.desc())
        if pipeline is not None:
            query = query.where(t.executions.c.pipeline == pipeline)
        with self._read() as conn:
            return [_execution(row) for row in conn.execute(query.limit(limit))]

    @_writes
    def set_execution_artifact(self, ident: str, artifact: str) -> None:
        with self._write() as conn:
            conn.execute(update(t.executions).where(t.executions.c.id == ident).values(artifact=artifact))

    @_writes
    def set_execution_status(self, ident: str, status: ExecutionStatus, *, now: datetime, reason: str | None = None,
                             actor: str = ENGINE_ACTOR, key: str | None = None) -> ExecutionRecord:
        """Move an execution to `status` (the transition table decides; IllegalTransition
        otherwise). An ended status also writes `execution_finished` in the same transaction. Asking
        for the status it already has writes nothing (a retried activity)."""
        with self._write() as conn:
            row = conn.execute(select(t.executions).where(t.executions.c.id == ident)).one()
            current = ExecutionStatus(row.status)
            if current == status:
                return _execution(row)
            transition(current, status)
            ended = status in TERMINAL_EXECUTION
            conn.execute(update(t.executions).where(t.executions.c.id == ident).values(
                status=str(status), finished=format_time(now) if ended else None, reason=reason))
            if ended:
                self._append(conn, draft("execution_finished", time=now, actor=actor, pipeline=row.pipeline,
                                         execution=ident, data={"status": str(status), "reason": reason}), key)
            return _execution(conn.execute(select(t.executions).where(t.executions.c.id == ident)).one())

    # ------------------------------------------------------------ poller and recovery

    def released(self, pipeline: str, commit: str) -> bool:
        """Whether `commit` was ever released for `pipeline`: an execution of it exists (any
        trigger, any status), or it is the pipeline's recorded last released commit. The poller
        never starts such a commit again (a force-push back to it releases nothing)."""
        with self._read() as conn:
            found = conn.execute(select(t.executions.c.id).where(
                t.executions.c.pipeline == pipeline, t.executions.c.commit == commit).limit(1)).first()
            if found is not None:
                return True
            last = conn.execute(select(t.pipelines.c.last_commit).where(t.pipelines.c.name == pipeline)).scalar()
            return bool(last == commit)

    def running_executions(self) -> list[ExecutionRecord]:
        """Every execution whose status is `running`, oldest first (by start time, then N): what
        recovery compares with the workflows Temporal knows."""
        query = (select(t.executions).where(t.executions.c.status == str(ExecutionStatus.RUNNING))
                 .order_by(t.executions.c.started, t.executions.c.pipeline, t.executions.c.number))
        with self._read() as conn:
            return [_execution(row) for row in conn.execute(query)]

    def latest_event(self, *, pipeline: str, types: Sequence[str]) -> Event | None:
        """The pipeline's newest event (highest `seq`) whose type is one of `types`, or None."""
        query = (select(t.events).where(t.events.c.pipeline == pipeline, t.events.c.type.in_(list(types)))
                 .order_by(t.events.c.seq.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(query).first()
            return None if row is None else _event(row)

    # ------------------------------------------------------------ stage runs

    @_writes
    def start_stage_run(self, execution: str, stage: str, *, now: datetime) -> StageRunRecord:
        """A new stage run of `execution` at `stage`, `waiting` at its entry gates (attempt 1, or
        one more than the last run of that stage once it ended: a `retry`). While the last run has
        not ended, that run is returned and nothing is written (a retried activity). The
        execution's `stage` follows."""
        with self._write() as conn:
            row = conn.execute(select(t.executions).where(t.executions.c.id == execution)).one()
            last = conn.execute(select(t.stage_runs).where(
                t.stage_runs.c.execution == execution, t.stage_runs.c.stage == stage
            ).order_by(t.stage_runs.c.attempt.desc()).limit(1)).first()
            if last is not None and StageRunStatus(last.status) not in TERMINAL_STAGE_RUN:
                return _stage_run(last)
            status = transition(STAGE_RUN_INITIAL, StageRunStatus.WAITING)
            result = conn.execute(insert(t.stage_runs).values(
                execution=execution, pipeline=row.pipeline, stage=stage,
                attempt=1 if last is None else last.attempt + 1, status=str(status),
                artifact=row.artifact, started=format_time(now), deployed=False))
            run_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            conn.execute(update(t.executions).where(t.executions.c.id == execution).values(stage=stage))
            return _stage_run(conn.execute(select(t.stage_runs).where(t.stage_runs.c.id == run_id)).one())

    def stage_run(self, run_id: int) -> StageRunRecord:
        with self._read() as conn:
            return _stage_run(conn.execute(_STAGE_RUN, {"id": run_id}).one())

    def stage_runs(self, *, execution: str | None = None, pipeline: str | None = None,
                   stage: str | None = None, statuses: Collection[StageRunStatus] | None = None,
                   pipelines: Collection[str] | None = None) -> list[StageRunRecord]:
        """The stage runs matching every filter given (`statuses`, `pipelines`: any of them),
        oldest first. `pipelines` uses the (pipeline, stage) index: no scan of every run stored."""
        query = select(t.stage_runs).order_by(t.stage_runs.c.id)
        if pipelines is not None:
            query = query.where(t.stage_runs.c.pipeline.in_(sorted(set(pipelines))))
        if statuses is not None:
            query = query.where(t.stage_runs.c.status.in_(sorted(str(s) for s in statuses)))
        if execution is not None:
            query = query.where(t.stage_runs.c.execution == execution)
        if pipeline is not None:
            query = query.where(t.stage_runs.c.pipeline == pipeline)
        if stage is not None:
            query = query.where(t.stage_runs.c.stage == stage)
        with self._read() as conn:
            return [_stage_run(row) for row in conn.execute(query)]

    def occupants(self, pipeline: str, stage: str) -> list[Occupant]:
        """The runs occupying a stage (what the `stage_busy` gate judges)."""
        with self._read() as conn:
            rows = conn.execute(select(t.stage_runs.c.execution, t.stage_runs.c.status).where(
                t.stage_runs.c.pipeline == pipeline, t.stage_runs.c.stage == stage,
                t.stage_runs.c.status.in_([str(s) for s in OCCUPYING])).order_by(t.stage_runs.c.id))
            return [Occupant(row.execution, StageRunStatus(row.status)) for row in rows]

    @_writes
    def set_stage_run_status(self, run_id: int, status: StageRunStatus, *, now: datetime, reason: str | None = None,
                             artifact: str | None = None, events: Sequence[tuple[EventDraft, str | None]] = ()
                             ) -> StageRunRecord:
        """Move a stage run to `status` (the transition table decides), with the events that say so
        (each with its idempotency key) in the same transaction. Asking for the status it already
        has writes nothing. Leaving `waiting` for `deploying` marks the run as having deployed."""
        with self._write() as conn:
            row = conn.execute(_STAGE_RUN, {"id": run_id}).one()
            return self._move_stage_run(conn, row, status, now=now, reason=reason, artifact=artifact, events=events)

    def _move_stage_run(self, conn: Connection, row: Row[Any], status: StageRunStatus, *, now: datetime,
                        reason: str | None, artifact: str | None,
                        events: Sequence[tuple[EventDraft, str | None]]) -> StageRunRecord:
        """`set_stage_run_status` inside a write transaction the caller holds."""
        run_id = row.id
        current = StageRunStatus(row.status)
        if current == status:
            return _stage_run(row)
        transition(current, status)
        values: dict[str, Any] = {"status": str(status), "reason": reason if reason is not None else row.reason}
        if status in TERMINAL_STAGE_RUN:
            values["finished"] = format_time(now)
        if status is StageRunStatus.DEPLOYING:
            values["deployed"] = True
        if status is StageRunStatus.BAKING:
            values["bake_started"] = format_time(now)
        if artifact is not None:
            values["artifact"] = artifact
        conn.execute(_UPDATE_STAGE_RUN, {"w_id": run_id, **values})
        for event_draft, key in events:
            self._append(conn, event_draft, key)
        return _stage_run(conn.execute(_STAGE_RUN, {"id": run_id}).one())

    # ------------------------------------------------------------ supersede and stage claims (step 4)

    def _runs_at_stage(self, conn: Connection, pipeline: str, stage: str) -> list[RunAtStage]:
        """The stage's runs in the order started, each with its execution's N and whether it runs."""
        rows = conn.execute(select(t.stage_runs.c.execution, t.stage_runs.c.status, t.stage_runs.c.deployed,
                                   t.executions.c.number, t.executions.c.status.label("execution_status"))
                            .join(t.executions, t.executions.c.id == t.stage_runs.c.execution)
                            .where(t.stage_runs.c.pipeline == pipeline, t.stage_runs.c.stage == stage)
                            .order_by(t.stage_runs.c.id))
        return [RunAtStage(row.execution, row.number, row.execution_status == str(ExecutionStatus.RUNNING),
                           StageRunStatus(row.status), bool(row.deployed)) for row in rows]

    def stage_rivals(self, run_id: int) -> Rivals:
        """The other executions at the stage of this stage run, as domain.supersede judges them."""
        with self._read() as conn:
            run = conn.execute(select(t.stage_runs).where(t.stage_runs.c.id == run_id)).one()
            number = conn.execute(select(t.executions.c.number).where(t.executions.c.id == run.execution)).scalar_one()
            return supersede.rivals(run.execution, number, self._runs_at_stage(conn, run.pipeline, run.stage))

    @_writes
    def claim_stage(self, run_id: int, status: StageRunStatus, *, now: datetime, reason: str | None = None,
                    artifact: str | None = None, events: Sequence[tuple[EventDraft, str | None]] = ()
                    ) -> tuple[supersede.ClaimResult, str | None, Rivals]:
        """Move a stage run to an occupying `status` (`deploying` from `waiting`, or `rolling_back`)
        only if it may take the stage now, judged and written in one transaction so that two
        executions never both take it: (CLAIMED, None, rivals) after the move, else (BUSY or
        SUPERSEDED, the execution that decides it, rivals) and nothing written. A deploy checks
        supersede too; a rollback only that no other execution occupies the stage. A run already in
        `status` (a retried activity) is CLAIMED again without a write."""
        if status not in OCCUPYING:
            raise ValueError(f"a claim moves a stage run to an occupying status, not {status}")
        with self._write() as conn:
            row = conn.execute(select(t.stage_runs).where(t.stage_runs.c.id == run_id)).one()
            number = conn.execute(select(t.executions.c.number).where(t.executions.c.id == row.execution)).scalar_one()
            runs = self._runs_at_stage(conn, row.pipeline, row.stage)
            found = supersede.rivals(row.execution, number, runs)
            if StageRunStatus(row.status) == status:
                return supersede.ClaimResult.CLAIMED, None, found
            result, by = supersede.claim(row.execution, number, runs, deploy=status is StageRunStatus.DEPLOYING)
            if result is supersede.ClaimResult.CLAIMED:
                self._move_stage_run(conn, row, status, now=now, reason=reason, artifact=artifact, events=events)
            return result, by, found

    # ------------------------------------------------------------ bake and rollback history

    @_writes
    def record_bake_passed(self, run_id: int, targets: Sequence[str], *, now: datetime) -> None:
        """The run's bake passed: noted on the run and, per target, in the stage's history (what
        the last good artifact is chosen from). Idempotent: a second call changes nothing."""
        with self._write() as conn:
            row = conn.execute(select(t.stage_runs).where(t.stage_runs.c.id == run_id)).one()
            if row.bake_passed is not None:
                return
            if row.artifact is None:
                raise ValueError(f"stage run {run_id} has no artifact")
            conn.execute(update(t.stage_runs).where(t.stage_runs.c.id == run_id).values(bake_passed=format_time(now)))
            for target in targets:
                conn.execute(insert(t.target_history).values(
                    pipeline=row.pipeline, stage=row.stage, target=target, artifact=row.artifact, kind="bake_passed",
                    at=format_time(now)))

    @_writes
    def record_rolled_back(self, pipeline: str, stage: str, target: str, artifact: str, *, now: datetime) -> None:
        """`artifact` was rolled back from `target` of `stage`."""
        with self._write() as conn:
            conn.execute(insert(t.target_history).values(
                pipeline=pipeline, stage=stage, target=target, artifact=artifact, kind="rolled_back",
                at=format_time(now)))

    def target_history(self, pipeline: str, stage: str) -> list[TargetEvent]:
        """The stage's bake passes and rollbacks per target, in the order they were recorded."""
        with self._read() as conn:
            rows = conn.execute(select(t.target_history).where(
                t.target_history.c.pipeline == pipeline, t.target_history.c.stage == stage
            ).order_by(t.target_history.c.id))
            out: list[TargetEvent] = []
            for row in rows:
                kind = BakePassed if row.kind == "bake_passed" else RolledBackFrom
                out.append(kind(row.artifact, row.target, _time(row.at)))
            return out

    # ------------------------------------------------------------ gate evaluations

    def record_gate(self, run_id: int, gate: str, result: GateResult, *, now: datetime,
                    actor: str = ENGINE_ACTOR) -> Event | None:
        """Keep a gate's latest evaluation for the stage run and, when it is the first one or its
        result or code changed, write its `gate` event in the same transaction (returned)."""
        return self.record_gates(run_id, [(gate, result)], now=now, actor=actor)[0]

    def record_gates(self, run_id: int, results: Sequence[tuple[str, GateResult]], *, now: datetime,
                     actor: str = ENGINE_ACTOR) -> list[Event | None]:
        """`record_gate` for each (gate, result) of one round, in one write transaction: a bake
        round records two or three gates every poll, and with 100 executions baking each write
        transaction queued for the store's one writer (benchmarks/RESULTS.md, issue 14). The
        `gate` event written for each, in order (None where none was needed).

        With `gate_flush_seconds` (the server's and worker's store), a round in which no gate
        needs an event (each evaluated before, none changed its result or code) writes nothing
        now: its latest values wait in memory and are written within that many seconds (see
        store/latest.py)."""
        if self._latest is not None:
            with self._read() as conn:
                stored = {row.gate: (row.result, row.code)
                          for row in conn.execute(_GATE_OUTCOMES, {"stage_run": run_id})}
            if all(gate in stored and not outcome_changed(stored[gate], result) for gate, result in results):
                stamp = format_time(now)
                for gate, result in results:
                    self._latest.put(run_id, gate, _gate_values(result, stamp))
                return [None] * len(results)
            self._latest.drop(run_id, [gate for gate, _ in results])
        return self._record_gates_now(run_id, results, now=now, actor=actor)

    @_writes
    def _record_gates_now(self, run_id: int, results: Sequence[tuple[str, GateResult]], *, now: datetime,
                          actor: str) -> list[Event | None]:
        """`record_gates`' write, with an event for each gate that needs one."""
        with self._write() as conn:
            return self._record_gates_in(conn, conn.execute(_STAGE_RUN, {"id": run_id}).one(), results, now=now,
                                         actor=actor)

    def _record_gates_in(self, conn: Connection, run: Row[Any], results: Sequence[tuple[str, GateResult]], *,
                         now: datetime, actor: str) -> list[Event | None]:
        """`_record_gates_now` inside a write transaction the caller holds (`run`: its row)."""
        stamp = format_time(now)
        rows = {row.gate: row for row in conn.execute(_GATE_OUTCOMES, {"stage_run": run.id})}
        written: list[Event | None] = []
        for gate, result in results:
            row = rows.get(gate)
            values = _gate_values(result, stamp)
            changed = outcome_changed(None if row is None else (row.result, row.code), result)
            if row is None:
                conn.execute(_INSERT_GATE_EVALUATION, {"stage_run": run.id, "gate": gate, "first_evaluated": stamp,
                                                       "changed": stamp, **values})
            else:
                conn.execute(_UPDATE_GATE_EVALUATION, {"w_stage_run": run.id, "w_gate": gate, **values,
                                                       **({"changed": stamp} if changed else {})})
            written.append(self._append(conn, draft("gate", time=now, actor=actor, pipeline=run.pipeline,
                                                    execution=run.execution, stage=run.stage,
                                                    data=result.event_data(gate)), None)
                           if changed else None)
        return written

    def fail_stage_run(self, run_id: int, results: Sequence[tuple[str, GateResult]], status: StageRunStatus, *,
                       now: datetime, reason: str | None = None,
                       events: Sequence[tuple[EventDraft, str | None]] = (),
                       only_from: StageRunStatus | None = None) -> StageRunRecord:
        """A failing round's gate evaluations (`record_gates`, their `gate` events first) and the
        run's move to `status` with its events (`set_stage_run_status`), in one write transaction:
        a bake that rolls back records its failing round with `rolling_back`, one write fewer on
        the way to the rollback's first hook (benchmarks/RESULTS.md, issue 14). IllegalTransition
        (nothing written) when the run cannot move to `status`. With `only_from`, a run found in
        another status is not moved (its round is still recorded): the run as found is returned,
        for the caller to see that it left its bake meanwhile (a `cancel`)."""
        if self._latest is not None:
            self._latest.drop(run_id, [gate for gate, _ in results])
        return self._fail_stage_run(run_id, results, status, now=now, reason=reason, events=events,
                                    only_from=only_from)

    @_writes
    def _fail_stage_run(self, run_id: int, results: Sequence[tuple[str, GateResult]], status: StageRunStatus, *,
                        now: datetime, reason: str | None, events: Sequence[tuple[EventDraft, str | None]],
                        only_from: StageRunStatus | None = None) -> StageRunRecord:
        with self._write() as conn:
            row = conn.execute(_STAGE_RUN, {"id": run_id}).one()
            found = StageRunStatus(row.status)
            moves = only_from is None or found is only_from
            if moves and found != status:
                transition(found, status)  # before any write: all or nothing
            self._record_gates_in(conn, row, results, now=now, actor=ENGINE_ACTOR)
            if not moves:
                return _stage_run(row)
            return self._move_stage_run(conn, row, status, now=now, reason=reason, artifact=None, events=events)

    def flush_gates(self) -> int:
        """Write the latest gate evaluations that wait in memory now (see `record_gates`); how many."""
        return 0 if self._latest is None else self._latest.flush()

    @_writes
    def _write_latest_gates(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self._write() as conn:
            conn.execute(_UPDATE_LATEST_GATE, [{"w_stage_run": row["stage_run"], "w_gate": row["gate"],
                                                "w_evaluated": row["evaluated"],
                                                **{name: row[name] for name in LATEST_FIELDS}} for row in rows])

    def gate_evaluations(self, run_id: int) -> dict[str, GateResult]:
        """The latest evaluation of each gate of a stage run, in the order first evaluated."""
        with self._read() as conn:
            rows = conn.execute(select(t.gate_evaluations).where(t.gate_evaluations.c.stage_run == run_id)
                                .order_by(t.gate_evaluations.c.first_evaluated, t.gate_evaluations.c.gate))
            found = {row.gate: row._asdict() for row in rows}
        waiting = {} if self._latest is None else self._latest.newest(run_id)
        for gate, values in waiting.items():
            if gate in found and found[gate]["evaluated"] < values["evaluated"]:
                found[gate].update(values)
        return {gate: _gate_of(values) for gate, values in found.items()}

    # ------------------------------------------------------------ hosts

    @_writes
    def set_host_state(self, pipeline: str, stage: str, target: str, host: str, *, state: str, artifact: str,
                       execution: str | None, now: datetime) -> HostRecord:
        """Record a host's deploy: `deploying` (the hooks of `artifact` start), `ok` (every hook of
        `artifact` succeeded: the host now runs it) or `failed` (a hook of `artifact` failed: the
        host's artifact stays that of its last good deploy)."""
        with self._write() as conn:
            return self._set_host_state(conn, pipeline, stage, target, host, state=state, artifact=artifact,
                                        execution=execution, now=now)

    def _set_host_state(self, conn: Connection, pipeline: str, stage: str, target: str, host: str, *, state: str,
                        artifact: str, execution: str | None, now: datetime) -> HostRecord:
        if state not in t.HOST_STATES:
            raise ValueError(f"host state {state!r}: one of {', '.join(t.HOST_STATES)}")
        key = host_key(host)
        row = conn.execute(_HOST, {"pipeline": pipeline, "host_key": key}).first()
        values: dict[str, Any] = {"host": host, "stage": stage, "target": target, "state": state,
                                  "execution": execution, "updated": format_time(now)}
        if state == "deploying":
            values["deploying_artifact"] = artifact
        elif state == "ok":
            values["artifact"] = artifact
            values["deploying_artifact"] = None
        else:
            values["deploying_artifact"] = artifact
        if row is None:
            conn.execute(_INSERT_HOST, {"pipeline": pipeline, "host_key": key, **values})
        else:
            conn.execute(_UPDATE_HOST, {"w_pipeline": pipeline, "w_host_key": key, **values})
        return _host(conn.execute(_HOST, {"pipeline": pipeline, "host_key": key}).one())

    def hosts(self, pipeline: str, *, stage: str | None = None) -> dict[str, HostRecord]:
        """The pipeline's hosts by `host_key`."""
        query = select(t.host_artifacts).where(t.host_artifacts.c.pipeline == pipeline)
        if stage is not None:
            query = query.where(t.host_artifacts.c.stage == stage)
        with self._read() as conn:
            return {row.host_key: _host(row) for row in conn.execute(query)}

    # ------------------------------------------------------------ hook runs

    @_writes
    def begin_hook_run(self, key: str, *, execution: str, pipeline: str, stage: str, target: str, host: str,
                       hook: str, artifact: str, now: datetime, rollback: bool = False,
                       log: str | None = None, first: bool = False) -> HookRunStart:
        """Look a hook run up by its idempotency key (from the workflow and activity ids) before
        running it, in one transaction:

        - its result is committed: `completed`, nothing written (do not run it again);
        - an attempt was started and never finished (a crash cut it off): that attempt is recorded
          `interrupted` with its `hook` event, and attempt + 1 is started;
        - else attempt 1 is started.

        With `first` (the host's first hook of this deploy), a started attempt also moves the host
        to `deploying` in the same transaction.
        """
        with self._write() as conn:
            return self._begin_hook_run_in(conn, key, execution=execution, pipeline=pipeline, stage=stage,
                                           target=target, host=host, hook=hook, artifact=artifact, now=now,
                                           rollback=rollback, log=log, first=first)

    @_writes
    def lease_and_begin_hook_run(self, key: str, *, holder: str, attempt: int, seconds: float, execution: str,
                                 pipeline: str, stage: str, target: str, host: str, hook: str, artifact: str,
                                 now: datetime, rollback: bool = False, log: str | None = None,
                                 first: bool = False) -> HookRunStart | None:
        """`acquire_host_lease(host, holder, attempt, seconds=seconds)` and, when granted,
        `begin_hook_run` in the same transaction: a host's first hook of a deploy takes the lease
        and begins in one write instead of two (one fewer on the way to a rollback's first hook,
        benchmarks/RESULTS.md, issue 14). None, with nothing written, while another hook run holds
        the lease (the caller then waits for it with `acquire_host_lease`)."""
        with self._write() as conn:
            if not self._take_host_lease(conn, host, holder, attempt, now=now, seconds=seconds):
                return None
            return self._begin_hook_run_in(conn, key, execution=execution, pipeline=pipeline, stage=stage,
                                           target=target, host=host, hook=hook, artifact=artifact, now=now,
                                           rollback=rollback, log=log, first=first)

    def _begin_hook_run_in(self, conn: Connection, key: str, *, execution: str, pipeline: str, stage: str,
                           target: str, host: str, hook: str, artifact: str, now: datetime, rollback: bool,
                           log: str | None, first: bool) -> HookRunStart:
        """`begin_hook_run` inside a write transaction the caller holds."""
        latest = self._latest_hook_run(conn, key)
        if latest is not None and latest.completed:
            return HookRunStart(latest, completed=True)
        interrupted = None
        if latest is not None:
            stamp = format_time(now)
            duration = max(0, int((now - latest.started).total_seconds() * 1000))
            conn.execute(_UPDATE_HOOK_RUN, {"w_id": latest.id, "finished": stamp, "interrupted": True,
                                            "exit_code": None, "duration_ms": duration})
            interrupted = self._hook_run_by_id(conn, latest.id)
            self._append(conn, _hook_event(interrupted, now), f"hook:{key}#{latest.attempt}")
        attempt = 1 if latest is None else latest.attempt + 1
        # (key, attempt) is unique in the table too; the write lock makes a clash impossible here.
        result = conn.execute(_INSERT_HOOK_RUN, {
            "key": key, "attempt": attempt, "execution": execution, "pipeline": pipeline, "stage": stage,
            "target": target, "host": host, "host_key": host_key(host), "hook": hook, "artifact": artifact,
            "rollback": rollback, "started": format_time(now), "timed_out": False, "interrupted": False,
            "log": log})
        run_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        if first:
            self._set_host_state(conn, pipeline, stage, target, host, state="deploying", artifact=artifact,
                                 execution=execution, now=now)
        return HookRunStart(self._hook_run_by_id(conn, run_id), completed=False, interrupted=interrupted)

    @_writes
    def set_hook_pgid(self, key: str, attempt: int, pgid: int) -> None:
        """The process group of a running attempt (killed whole if a crash leaves it behind)."""
        with self._write() as conn:
            conn.execute(_UPDATE_HOOK_RUN_BY_ATTEMPT, {"w_key": key, "w_attempt": attempt, "pgid": pgid})

    @_writes
    def finish_hook_run(self, key: str, attempt: int, *, exit_code: int | None, timed_out: bool, duration_ms: int,
                        now: datetime, actor: str = ENGINE_ACTOR, last: bool = False) -> tuple[HookRunRecord, Event]:
        """Commit a hook run's result together with its `hook` event, and the host's state in the
        same transaction: `failed` when the hook failed, `ok` when it succeeded and was the host's
        `last` hook of the deploy. A second call for the same attempt writes nothing and returns
        what the first one wrote."""
        with self._write() as conn:
            row = conn.execute(_HOOK_RUN_BY_ATTEMPT, {"key": key, "attempt": attempt}).one()
            run = _hook_run(row)
            event_key = f"hook:{key}#{attempt}"
            if run.finished is not None:
                done = conn.execute(_EVENT_BY_KEY, {"key": event_key}).one()
                return run, _event(done)
            conn.execute(_UPDATE_HOOK_RUN, {"w_id": run.id, "finished": format_time(now), "exit_code": exit_code,
                                            "timed_out": timed_out, "duration_ms": duration_ms})
            finished = self._hook_run_by_id(conn, run.id)
            written = self._append(conn, _hook_event(finished, now, actor), event_key)
            if not finished.succeeded or last:
                self._set_host_state(conn, finished.pipeline, finished.stage, finished.target, finished.host,
                                     state="ok" if finished.succeeded else "failed", artifact=finished.artifact,
                                     execution=finished.execution, now=now)
            return finished, written

    def hook_run(self, key: str) -> HookRunRecord | None:
        """The latest attempt of the hook run with this key."""
        with self._read() as conn:
            return self._latest_hook_run(conn, key)

    def hook_runs(self, *, execution: str | None = None, key: str | None = None) -> list[HookRunRecord]:
        query = select(t.hook_runs).order_by(t.hook_runs.c.id)
        if execution is not None:
            query = query.where(t.hook_runs.c.execution == execution)
        if key is not None:
            query = query.where(t.hook_runs.c.key == key)
        with self._read() as conn:
            return [_hook_run(row) for row in conn.execute(query)]

    def hosts_with_hooks(self, pipeline: str, stage: str, artifact: str) -> list[str]:
        """Hosts of a stage on which any hook of `artifact` ran (the hosts a rollback redeploys),
        one spelling per `host_key`, in the order first run."""
        with self._read() as conn:
            rows = conn.execute(select(t.hook_runs.c.host, t.hook_runs.c.host_key).where(
                t.hook_runs.c.pipeline == pipeline, t.hook_runs.c.stage == stage, t.hook_runs.c.artifact == artifact
            ).order_by(t.hook_runs.c.id))
            seen: dict[str, str] = {}
            for row in rows:
                seen.setdefault(row.host_key, row.host)
            return list(seen.values())

    def _latest_hook_run(self, conn: Connection, key: str) -> HookRunRecord | None:
        row = conn.execute(_LATEST_HOOK_RUN, {"key": key}).first()
        return None if row is None else _hook_run(row)

    def _hook_run_by_id(self, conn: Connection, run_id: Any) -> HookRunRecord:
        return _hook_run(conn.execute(_HOOK_RUN_BY_ID, {"id": run_id}).one())

    # ------------------------------------------------------------ deploy halts

    @_writes
    def halt_deploy(self, key: str, reason: str, *, now: datetime) -> None:
        """Stop the deploy of `key` from starting new hooks (the first reason is kept)."""
        with self._write() as conn:
            if conn.execute(select(t.deploy_halts.c.key).where(t.deploy_halts.c.key == key)).first() is None:
                conn.execute(insert(t.deploy_halts).values(key=key, reason=reason, time=format_time(now)))

    @_writes
    def prune_deploy_halts(self) -> int:
        """Drop the halts of stage runs that have ended; how many. A halt is read only by its
        deploy while it runs (`deploy_halted`), and a stage run ends only after its deploy has
        (the workflow waits for the deploy activity's answer), so nothing reads them any more.
        Keys are `EXECUTION/RUN_ID/deploy` or `.../rollback` (contract.halt_key); one that does
        not parse so is kept."""
        with self._read() as conn:
            keys = [str(row.key) for row in conn.execute(select(t.deploy_halts.c.key))]
            runs: dict[str, int] = {}
            for key in keys:
                parts = key.rsplit("/", 2)
                if len(parts) == 3 and parts[1].isdigit() and parts[2] in ("deploy", "rollback"):
                    runs[key] = int(parts[1])
            if not runs:
                return 0
            ended = {int(row.id) for row in conn.execute(select(t.stage_runs.c.id).where(
                t.stage_runs.c.id.in_(set(runs.values())),
                t.stage_runs.c.status.in_([str(status) for status in TERMINAL_STAGE_RUN])))}
        gone = [key for key, run_id in runs.items() if run_id in ended]
        if gone:
            with self._write() as conn:
                conn.execute(delete(t.deploy_halts).where(t.deploy_halts.c.key.in_(gone)))
        return len(gone)

    def deploy_halted(self, key: str) -> str | None:
        """Why the deploy of `key` was halted, None while it may go on."""
        with self._read() as conn:
            row = conn.execute(_DEPLOY_HALT, {"key": key}).first()
        return None if row is None else str(row.reason)

    # ------------------------------------------------------------ host leases

    @_writes
    def acquire_host_lease(self, host: str, holder: str, attempt: int, *, now: datetime, seconds: float) -> bool:
        """Take the lease of `host` for `seconds` (one hook per host across workers). Granted when
        no lease is held, when the held one has expired, or when `holder` already holds it (a later
        attempt of the same hook run: Temporal retries an activity only once the earlier attempt
        timed out or its worker is gone, and the caller kills that attempt's process group).
        False while another hook run holds it."""
        with self._write() as conn:
            return self._take_host_lease(conn, host, holder, attempt, now=now, seconds=seconds)

    @staticmethod
    def _take_host_lease(conn: Connection, host: str, holder: str, attempt: int, *, now: datetime,
                         seconds: float) -> bool:
        """`acquire_host_lease` inside a write transaction the caller holds."""
        key = host_key(host)
        row = conn.execute(_HOST_LEASE, {"host_key": key}).first()
        if row is not None and row.holder != holder and row.expires > format_time(now):
            return False
        values = {"holder": holder, "attempt": attempt, "acquired": format_time(now),
                  "expires": format_time(now + timedelta(seconds=seconds))}
        if row is None:
            conn.execute(_INSERT_HOST_LEASE, {"host_key": key, **values})
        else:
            conn.execute(_UPDATE_HOST_LEASE, {"w_host_key": key, **values})
        return True

    @_writes
    def release_host_lease(self, host: str, holder: str) -> None:
        """Give the lease back (only the holder's own lease is removed)."""
        with self._write() as conn:
            conn.execute(_DELETE_HOST_LEASE, {"w_host_key": host_key(host), "w_holder": holder})

    def host_lease(self, host: str) -> tuple[str, int, datetime] | None:
        """The holder, attempt and expiry of the lease of `host`, if any is recorded."""
        with self._read() as conn:
            row = conn.execute(_HOST_LEASE, {"host_key": host_key(host)}).first()
        return None if row is None else (row.holder, row.attempt, _time(row.expires))

    # ------------------------------------------------------------ overrides

    @_writes
    def put_override(self, override: Override, *, key: str | None = None) -> Event:
        """Store an override (replacing any of the same pipeline, stage and gate) with its
        `override_granted` event."""
        override_rules.check_overridable(override.gate)
        with self._write() as conn:
            if key is not None:
                done = conn.execute(select(t.events).where(t.events.c.idempotency_key == key)).first()
                if done is not None:
                    return _event(done)
            where = (t.overrides.c.pipeline == override.pipeline, t.overrides.c.stage == override.stage,
                     t.overrides.c.gate == override.gate)
            conn.execute(delete(t.overrides).where(*where))
            conn.execute(insert(t.overrides).values(
                pipeline=override.pipeline, stage=override.stage, gate=override.gate, actor=override.actor,
                reason=override.reason, granted=format_time(override.granted), expires=format_time(override.expires)))
            return self._append(conn, draft("override_granted", time=override.granted, actor=override.actor,
                                            pipeline=override.pipeline, stage=override.stage,
                                            data=override.event_data()), key)

    @_writes
    def revoke_override(self, pipeline: str, stage: str, gate: str, *, actor: str, now: datetime,
                        key: str | None = None) -> Event:
        """Remove an override with its `override_revoked` event; Refused when there is none."""
        with self._write() as conn:
            if key is not None:
                done = conn.execute(select(t.events).where(t.events.c.idempotency_key == key)).first()
                if done is not None:
                    return _event(done)
            current = [_override(row) for row in conn.execute(select(t.overrides).where(
                t.overrides.c.pipeline == pipeline, t.overrides.c.stage == stage))]
            _, revoked = override_rules.revoke([o for o in current if o.active_at(now)], pipeline, stage, gate)
            conn.execute(delete(t.overrides).where(t.overrides.c.pipeline == pipeline, t.overrides.c.stage == stage,
                                                   t.overrides.c.gate == gate))
            return self._append(conn, draft("override_revoked", time=now, actor=actor, pipeline=pipeline, stage=stage,
                                            data=revoked.event_data()), key)

    def overrides(self, *, pipeline: str | None = None) -> list[Override]:
        """Stored overrides (active ones, and expired ones not yet expired by `expire_overrides`)."""
        with self._read() as conn:
            if pipeline is None:
                rows = conn.execute(_OVERRIDES)
            else:
                rows = conn.execute(_PIPELINE_OVERRIDES, {"pipeline": pipeline})
            return [_override(row) for row in rows]

    @_writes
    def expire_overrides(self, now: datetime) -> list[Event]:
        """Drop every override whose expiry has come, each with its `override_expired` event."""
        with self._write() as conn:
            written = []
            for override in override_rules.expired((_override(r) for r in conn.execute(select(t.overrides))), now):
                conn.execute(delete(t.overrides).where(
                    t.overrides.c.pipeline == override.pipeline, t.overrides.c.stage == override.stage,
                    t.overrides.c.gate == override.gate))
                written.append(self._append(conn, draft(
                    "override_expired", time=now, pipeline=override.pipeline, stage=override.stage,
                    data=override.event_data()), None))
            return written

    # ------------------------------------------------------------ synthetics

    @contextmanager
    def _write_measurements(self) -> Iterator[Connection]:
        """A write transaction for measurements (synthetic results): not part of the audit chain,
        so it does not lock the chain head (on SQLite, BEGIN IMMEDIATE still serialises it with
        every other write)."""
        with self._local_writer, self.engine.connect() as conn:
            conn.execution_options(pw_write=True)
            with conn.begin():
                yield conn

    @_writes
    def record_synthetic_results(self, rows: Sequence[SyntheticResult]) -> None:
        """Store synthetic results, all in one transaction (one commit for a batch)."""
        if not rows:
            return
        values = [{
            "pipeline": row.pipeline, "synthetic": row.synthetic, "stage": row.stage, "host": row.host,
            "host_key": host_key(row.host), "method": row.method, "path": row.path, "time": format_time(row.time),
            "success": row.success, "status": row.status, "error": row.error, "duration_ms": row.duration_ms,
        } for row in rows]
        with self._write_measurements() as conn:
            conn.execute(insert(t.synthetic_results), values)

    def synthetic_counts(self, pipeline: str, name: str, hosts: Sequence[str], since: datetime, *,
                         signal: str) -> int:
        """How many requests of synthetic `name` of `pipeline` to any of `hosts` (compared by
        `host_key`), sent at or after `since`, succeeded (`signal="success"`) or failed
        (`"failure"`)."""
        if signal not in ("success", "failure"):
            raise ValueError(f"signal {signal!r}: expected success or failure")
        keys = sorted({host_key(host) for host in hosts})
        if not keys:
            return 0
        c = t.synthetic_results.c
        query = select(func.count()).select_from(t.synthetic_results).where(
            c.pipeline == pipeline, c.synthetic == name, c.host_key.in_(keys), c.success == (signal == "success"),
            c.time >= format_time(since))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def synthetic_last_seen(self, pipeline: str, name: str, hosts: Sequence[str]) -> datetime | None:
        """When the newest stored request of synthetic `name` of `pipeline` to any of `hosts` was
        sent (whatever its outcome); None when there is none."""
        c = t.synthetic_results.c
        newest: str | None = None
        with self._read() as conn:
            # One index seek per host and outcome (the index's order), whatever the table's size.
            for key in sorted({host_key(host) for host in hosts}):
                for success in (True, False):
                    time = conn.execute(select(c.time).where(
                        c.pipeline == pipeline, c.synthetic == name, c.host_key == key, c.success == success,
                    ).order_by(c.time.desc()).limit(1)).scalar()
                    if time is not None and (newest is None or time > newest):
                        newest = time
        return _opt_time(newest)

    @_writes
    def prune_synthetic_results(self, before: datetime) -> int:
        """Delete the synthetic results sent before `before`, in batches of PRUNE_BATCH rows per
        transaction; how many were deleted."""
        c = t.synthetic_results.c
        cutoff = format_time(before)
        deleted = 0
        while True:
            with self._write_measurements() as conn:
                batch = select(c.id).where(c.time < cutoff).limit(PRUNE_BATCH)
                count = conn.execute(delete(t.synthetic_results).where(c.id.in_(batch))).rowcount
            deleted += count
            if count < PRUNE_BATCH:
                return deleted


    # ------------------------------------------------------------ alarm states

    @_writes
    def put_round_alarm_states(self, stages: Mapping[tuple[str, str], Mapping[str, AlarmState]], *,
                               now: datetime) -> None:
        """The alarm evaluator's states after one round, per (pipeline, stage), each stage's
        replacing its earlier ones (an alarm the stage no longer lists disappears); in one
        transaction: one write (and one fsync) a round, whatever the number of stages, so that the
        evaluator never queues behind the executions' writes once per stage."""
        if not stages:
            return
        c = t.alarm_states.c
        stamp = format_time(now)
        with self._write_measurements() as conn:
            for pipeline, stage in stages:
                conn.execute(delete(t.alarm_states).where(c.pipeline == pipeline, c.stage == stage))
            rows = [{"pipeline": pipeline, "stage": stage, "alarm": name, "evaluated": stamp,
                     "state": json.dumps(state.to_json(), sort_keys=True)}
                    for (pipeline, stage), states in stages.items() for name, state in states.items()]
            if rows:
                conn.execute(insert(t.alarm_states), rows)

    def all_alarm_states(self) -> dict[tuple[str, str], dict[str, tuple[AlarmState, datetime]]]:
        """Every stored alarm state, by (pipeline, stage) and alarm name (one read for a round)."""
        c = t.alarm_states.c
        with self._read() as conn:
            rows = conn.execute(select(c.pipeline, c.stage, c.alarm, c.state, c.evaluated)).all()
        found: dict[tuple[str, str], dict[str, tuple[AlarmState, datetime]]] = {}
        for row in rows:
            found.setdefault((row.pipeline, row.stage), {})[row.alarm] = (
                AlarmState.from_json(json.loads(row.state)), parse_time(row.evaluated))
        return found

    def alarm_states(self, pipeline: str, stage: str) -> dict[str, tuple[AlarmState, datetime]]:
        """The stored states of `stage`'s alarms, by alarm name, with when each was evaluated."""
        with self._read() as conn:
            rows = conn.execute(_ALARM_STATES, {"pipeline": pipeline, "stage": stage}).all()
        return {row.alarm: (AlarmState.from_json(json.loads(row.state)), parse_time(row.evaluated))
                for row in rows}

# ---------------------------------------------------------------- SQLite connection set-up


def _sqlite_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # The driver's own transaction handling off: the store emits BEGIN itself (_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write takes the write lock at BEGIN (IMMEDIATE); a read starts a plain deferred snapshot.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pw_write") else "BEGIN")


# ---------------------------------------------------------------- rows to values


def _event(row: Row[Any]) -> Event:
    data = json.loads(row.data)
    if not isinstance(data, dict):
        raise TypeError("data is not a JSON object")
    return Event(row.seq, row.time, row.type, row.pipeline, row.execution, row.stage, row.target, row.host,
                 row.actor, data, row.prev_hash, row.hash)


def _pipeline(row: Row[Any]) -> PipelineRecord:
    definition = json.loads(row.definition) if row.definition else None
    return PipelineRecord(row.name, row.last_commit, bool(row.paused), row.paused_by, row.paused_reason,
                          row.repo, row.branch, row.path, definition, row.definition_commit, row.team, row.org)


def _execution(row: Row[Any]) -> ExecutionRecord:
    return ExecutionRecord(row.id, row.pipeline, row.number, row.commit, row.artifact, ExecutionStatus(row.status),
                           row.trigger, row.stage, _time(row.started), _opt_time(row.finished), row.reason)


def _stage_run(row: Row[Any]) -> StageRunRecord:
    return StageRunRecord(row.id, row.execution, row.pipeline, row.stage, row.attempt, StageRunStatus(row.status),
                          row.artifact, _time(row.started), _opt_time(row.finished), bool(row.deployed),
                          _opt_time(row.bake_started), _opt_time(row.bake_passed), row.reason)


def _gate_of(values: Mapping[Any, Any]) -> GateResult:
    inputs: Mapping[str, Any] = json.loads(values["inputs"])
    return GateResult(GateOutcome(values["result"]), values["code"], values["reason"], _opt_time(values["until"]),
                      inputs)


def _gate_values(result: GateResult, stamp: str) -> dict[str, Any]:
    """A gate evaluation's columns but its stage run, gate and first/changed times."""
    return {"result": str(result.result), "code": result.code, "reason": result.reason,
            "until": format_optional_time(result.until), "evaluated": stamp,
            "inputs": json.dumps(dict(result.inputs), ensure_ascii=False, separators=(",", ":"), allow_nan=False)}


def _host(row: Row[Any]) -> HostRecord:
    return HostRecord(row.pipeline, row.host, row.stage, row.target, row.artifact, row.state,
                      row.deploying_artifact, row.execution)


def _hook_run(row: Row[Any]) -> HookRunRecord:
    return HookRunRecord(row.id, row.key, row.attempt, row.execution, row.pipeline, row.stage, row.target, row.host,
                         row.hook, row.artifact, bool(row.rollback), _time(row.started), _opt_time(row.finished),
                         row.exit_code, bool(row.timed_out), bool(row.interrupted), row.duration_ms, row.log, row.pgid)


def _override(row: Row[Any]) -> Override:
    return Override(row.gate, row.pipeline, row.stage, row.actor, row.reason, _time(row.granted), _time(row.expires))


def _hook_event(run: HookRunRecord, now: datetime, actor: str = ENGINE_ACTOR) -> EventDraft:
    return draft("hook", time=now, actor=actor, pipeline=run.pipeline, execution=run.execution, stage=run.stage,
                 target=run.target, host=run.host, data={
                     "hook": run.hook, "exit_code": run.exit_code, "attempt": run.attempt,
                     "duration_ms": run.duration_ms or 0, "timed_out": run.timed_out, "interrupted": run.interrupted,
                     "log": run.log,
                 })
