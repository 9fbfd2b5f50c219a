"""The store's prebuilt statements (store.py, "prebuilt statements"): an UPDATE built once sets
only the columns a call passes, and every prebuilt statement compiles for PostgreSQL too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from engine_helpers import T0, at
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable

from pipewarden.engine.domain.gates import PASS, WAIT
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.store import EngineStore
from pipewarden.engine.store import store as store_module

COMMIT = "9f8e7d6c5b4a" + "1" * 28



def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "state" / "engine.db")


def test_gate_evaluation_keeps_changed_and_first_evaluated(tmp_path: Path, store: EngineStore) -> None:
    execution = store.create_execution("shop", COMMIT, trigger="release", now=T0)
    run = store.start_stage_run(execution.id, "beta", now=at(1))
    waiting = WAIT("approval_missing", "waiting for approval: qa")
    store.record_gates(run.id, [("approval", waiting)], now=at(2))
    store.record_gates(run.id, [("approval", waiting)], now=at(3))  # same result: `changed` stays
    query = "select first_evaluated, evaluated, changed, result from gate_evaluations where gate = 'approval'"
    with db(tmp_path) as conn:
        assert conn.execute(query).fetchone() == (
            "2026-12-01T15:00:02.000Z", "2026-12-01T15:00:03.000Z", "2026-12-01T15:00:02.000Z", "wait")
    store.record_gates(run.id, [("approval", PASS())], now=at(4))
    with db(tmp_path) as conn:
        assert conn.execute(query).fetchone() == (
            "2026-12-01T15:00:02.000Z", "2026-12-01T15:00:04.000Z", "2026-12-01T15:00:04.000Z", "pass")


def test_stage_run_moves_set_only_their_columns(store: EngineStore) -> None:
    execution = store.create_execution("shop", COMMIT, trigger="release", now=T0)
    run = store.start_stage_run(execution.id, "beta", now=at(1))
    store.set_stage_run_status(run.id, S.DEPLOYING, now=at(2), reason="go", artifact="a" * 12)
    store.set_stage_run_status(run.id, S.BAKING, now=at(3))
    done = store.set_stage_run_status(run.id, S.SUCCEEDED, now=at(4))
    assert (done.deployed, done.artifact, done.reason) == (True, "a" * 12, "go")
    assert (done.bake_started, done.finished) == (at(3), at(4))
    assert store.stage_run(run.id) == done


def test_host_lease_taken_over_and_released(store: EngineStore) -> None:
    assert store.acquire_host_lease("H:1", "a", 1, now=T0, seconds=10)
    assert not store.acquire_host_lease("h:1", "b", 1, now=at(5), seconds=10)
    assert store.acquire_host_lease("h:1", "b", 2, now=at(11), seconds=10)  # expired: b takes it over
    assert store.host_lease("H:1") == ("b", 2, at(21))
    store.release_host_lease("h:1", "a")  # not a's any more
    assert store.host_lease("h:1") == ("b", 2, at(21))
    store.release_host_lease("H:1", "b")
    assert store.host_lease("h:1") is None


def _prebuilt() -> list[tuple[str, ClauseElement]]:
    return [(name, value) for name, value in vars(store_module).items()
            if name.startswith("_") and name.isupper() and isinstance(value, Executable)
            and isinstance(value, ClauseElement)]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_prebuilt_statements_compile(dialect: Dialect) -> None:
    statements = _prebuilt()
    assert len(statements) >= 20
    for name, statement in statements:
        assert str(statement.compile(dialect=dialect)), name
    lock = str(store_module._LOCK_HEAD.compile(dialect=postgresql.dialect()))
    assert lock.endswith("FOR UPDATE")
