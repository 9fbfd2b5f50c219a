"""The store's reads for the poller and recovery (released, running_executions, latest_event), on
real SQLite files."""

from __future__ import annotations

from engine_helpers import T0, at

from pipewarden.engine.domain.events import draft
from pipewarden.engine.domain.status import ExecutionStatus as E
from pipewarden.engine.store import EngineStore

COMMIT = "9f8e7d6c5b4a" + "1" * 28
COMMIT2 = "0123456789ab" + "2" * 28
COMMIT3 = "abcdefabcdef" + "3" * 28



def test_released_by_any_execution_or_last_commit(store: EngineStore) -> None:
    assert not store.released("shop", COMMIT)  # no pipeline yet
    store.create_execution("shop", COMMIT, trigger="poll", now=T0)
    store.create_execution("shop", COMMIT2, trigger="release", now=at(1))
    failed = store.create_execution("cart", COMMIT3, trigger="poll", now=at(2))
    store.set_execution_status(failed.id, E.FAILED, now=at(3), reason="policy")
    assert store.released("shop", COMMIT) and store.released("shop", COMMIT2)  # poll and by hand
    assert store.released("cart", COMMIT3)  # whatever became of it
    assert not store.released("shop", COMMIT3) and not store.released("cart", COMMIT)  # per pipeline
    store.set_last_commit("lone", COMMIT3, now=at(4))  # marked without an execution
    assert store.released("lone", COMMIT3) and not store.released("lone", COMMIT)


def test_running_executions_oldest_first(store: EngineStore) -> None:
    a = store.create_execution("shop", COMMIT, trigger="poll", now=at(5))
    b = store.create_execution("cart", COMMIT, trigger="poll", now=at(1))
    c = store.create_execution("shop", COMMIT2, trigger="poll", now=at(5))
    done = store.create_execution("shop", COMMIT3, trigger="poll", now=at(0))
    store.set_execution_status(done.id, E.SUCCEEDED, now=at(9))
    assert [x.id for x in store.running_executions()] == [b.id, a.id, c.id]
    store.set_execution_status(a.id, E.CANCELLED, now=at(9))
    assert [x.id for x in store.running_executions()] == [b.id, c.id]


def test_latest_event_of_types(store: EngineStore) -> None:
    assert store.latest_event(pipeline="shop", types=["branch_missing"]) is None
    store.append_event(draft("branch_missing", time=T0, pipeline="shop", data={"branch": "main"}))
    store.create_execution("shop", COMMIT, trigger="poll", now=at(1))
    store.append_event(draft("branch_missing", time=at(2), pipeline="cart", data={"branch": "main"}))
    latest = store.latest_event(pipeline="shop", types=["branch_missing", "execution_started"])
    assert latest is not None and latest.type == "execution_started" and latest.execution == "shop-1"
    missing = store.latest_event(pipeline="shop", types=["branch_missing"])
    assert missing is not None and missing.seq == 1
