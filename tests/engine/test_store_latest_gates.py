"""The write-behind of unchanged gate evaluations (store/latest.py, `gate_flush_seconds`): a round
whose gates change neither result nor code waits in memory, this process reads it at once, other
readers within the flush interval; a change, a first evaluation and every event are written at
once; a flushed row never goes back in time; close() writes what waits; a failed flush loses
nothing. On a real SQLite file, read back with sqlite3 as another process would."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import T0, at

from pipewarden.engine.domain.gates import PASS, WAIT
from pipewarden.engine.store import EngineStore, default_url
from pipewarden.engine.store.latest import PendingGates

COMMIT = "9f8e7d6c5b4a" + "2" * 28
ROW = "select evaluated, reason, changed, result from gate_evaluations where gate = 'datapoints'"


def waiting(positive: int) -> Any:
    return WAIT("insufficient_data", f"insufficient data: {positive} of 100 positive", inputs={"positive": positive})


@pytest.fixture
def late_store(tmp_path: Path) -> Iterator[EngineStore]:
    """A store that writes unchanged evaluations late; its thread waits an hour, so only the test
    flushes (the thread's own turn has a test of its own)."""
    with EngineStore(default_url(tmp_path / "state"), gate_flush_seconds=3600) as opened:
        yield opened


def stored(tmp_path: Path) -> tuple[str, str, str, str] | None:
    with sqlite3.connect(tmp_path / "state" / "engine.db") as conn:
        return conn.execute(ROW).fetchone()  # type: ignore[no-any-return]


def gate_events(store: EngineStore, execution: str) -> list[str]:
    return [str(event.data["code"]) for event in store.events(execution=execution, types=["gate"])]


def run_of(store: EngineStore) -> tuple[str, int]:
    execution = store.create_execution("shop", COMMIT, trigger="release", now=T0)
    return execution.id, store.start_stage_run(execution.id, "canary", now=at(1)).id


def two_rounds(store: EngineStore) -> None:
    """A datapoints gate's first round at 2 s (10 positive) and an unchanged one at 4 s (30)."""
    _, run = run_of(store)
    store.record_gates(run, [("datapoints", waiting(10))], now=at(2))
    store.record_gates(run, [("datapoints", waiting(30))], now=at(4))


def test_an_unchanged_round_waits_in_memory_and_this_process_reads_it(tmp_path: Path,
                                                                       late_store: EngineStore) -> None:
    execution, run = run_of(late_store)
    assert late_store.record_gates(run, [("datapoints", waiting(10))], now=at(2))[0] is not None  # first: at once
    assert late_store.record_gates(run, [("datapoints", waiting(40))], now=at(4)) == [None]
    assert stored(tmp_path) == ("2026-12-01T15:00:02.000Z", "insufficient data: 10 of 100 positive",
                                "2026-12-01T15:00:02.000Z", "wait")
    seen = late_store.gate_evaluations(run)["datapoints"]
    assert (seen.reason, dict(seen.inputs)) == ("insufficient data: 40 of 100 positive", {"positive": 40})
    assert late_store.flush_gates() == 1
    assert stored(tmp_path) == ("2026-12-01T15:00:04.000Z", "insufficient data: 40 of 100 positive",
                                "2026-12-01T15:00:02.000Z", "wait")
    assert late_store.flush_gates() == 0
    assert gate_events(late_store, execution) == ["insufficient_data"]


def test_a_change_is_written_at_once_with_its_event_and_replaces_what_waits(tmp_path: Path,
                                                                            late_store: EngineStore) -> None:
    execution, run = run_of(late_store)
    late_store.record_gates(run, [("datapoints", waiting(10))], now=at(2))
    late_store.record_gates(run, [("datapoints", waiting(90))], now=at(4))
    assert late_store.record_gates(run, [("datapoints", PASS("100 positive"))], now=at(6))[0] is not None
    assert stored(tmp_path) == ("2026-12-01T15:00:06.000Z", "100 positive", "2026-12-01T15:00:06.000Z", "pass")
    assert late_store.flush_gates() == 0  # the waiting round was dropped: the change is newer
    assert gate_events(late_store, execution) == ["insufficient_data", "ok"]


def test_a_round_with_one_new_gate_is_written_whole_at_once(tmp_path: Path, late_store: EngineStore) -> None:
    _, run = run_of(late_store)
    late_store.record_gates(run, [("datapoints", waiting(10))], now=at(2))
    late_store.record_gates(run, [("datapoints", waiting(20)), ("alarms", PASS("quiet"))], now=at(4))
    assert stored(tmp_path) == ("2026-12-01T15:00:04.000Z", "insufficient data: 20 of 100 positive",
                                "2026-12-01T15:00:02.000Z", "wait")
    assert late_store.flush_gates() == 0


def test_a_flushed_row_never_goes_back_in_time(tmp_path: Path, late_store: EngineStore) -> None:
    # A bake that a `wake` replaced may record a round judged before the newer bake's last one.
    _, run = run_of(late_store)
    late_store.record_gates(run, [("datapoints", waiting(10))], now=at(2))
    late_store.record_gates(run, [("datapoints", waiting(10))], now=at(9))
    late_store.flush_gates()
    late_store.record_gates(run, [("datapoints", waiting(5))], now=at(7))
    assert late_store.gate_evaluations(run)["datapoints"].reason == "insufficient data: 10 of 100 positive"
    late_store.flush_gates()
    assert stored(tmp_path) == ("2026-12-01T15:00:09.000Z", "insufficient data: 10 of 100 positive",
                                "2026-12-01T15:00:02.000Z", "wait")


def test_close_writes_what_waits(tmp_path: Path) -> None:
    with EngineStore(default_url(tmp_path / "state"), gate_flush_seconds=3600) as store:
        two_rounds(store)
    assert stored(tmp_path) == ("2026-12-01T15:00:04.000Z", "insufficient data: 30 of 100 positive",
                                "2026-12-01T15:00:02.000Z", "wait")


def test_the_flush_thread_writes_within_its_interval(tmp_path: Path) -> None:
    with EngineStore(default_url(tmp_path / "state"), gate_flush_seconds=0.05) as store:
        two_rounds(store)
        deadline = time.monotonic() + 10
        while (row := stored(tmp_path)) is not None and row[0] != "2026-12-01T15:00:04.000Z":
            assert time.monotonic() < deadline, row
            time.sleep(0.02)


def test_without_an_interval_every_round_is_written_at_once(tmp_path: Path, store: EngineStore) -> None:
    two_rounds(store)
    assert stored(tmp_path) == ("2026-12-01T15:00:04.000Z", "insufficient data: 30 of 100 positive",
                                "2026-12-01T15:00:02.000Z", "wait")
    assert store.flush_gates() == 0


class FailingOnce:
    """A flush that fails its first call (the database locked by another process too long)."""

    def __init__(self) -> None:
        self.calls = 0
        self.written: list[list[Mapping[str, Any]]] = []

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OSError("database is locked")
        self.written.append(list(rows))


def values(evaluated: str, reason: str) -> dict[str, Any]:
    return {"reason": reason, "until": None, "inputs": "{}", "evaluated": evaluated}


def test_a_failed_flush_keeps_its_rows_unless_newer_ones_came() -> None:
    flush = FailingOnce()
    pending = PendingGates(flush, seconds=3600)
    pending.put(1, "datapoints", values("2026-12-01T15:00:02.000Z", "a"))
    pending.put(2, "alarms", values("2026-12-01T15:00:02.000Z", "b"))
    with pytest.raises(OSError):
        pending.flush()
    pending.put(1, "datapoints", values("2026-12-01T15:00:04.000Z", "newer"))
    pending.put(2, "alarms", values("2026-12-01T15:00:01.000Z", "older"))  # never replaces a newer one
    assert pending.flush() == 2
    assert sorted((row["stage_run"], row["reason"]) for row in flush.written[0]) == [(1, "newer"), (2, "b")]
    pending.close()


def test_a_failing_round_and_rolling_back_are_one_write_and_nothing_of_it_when_the_run_cannot_move(
        tmp_path: Path, late_store: EngineStore) -> None:
    """`fail_stage_run`: the failing round's gates (their `gate` events first) with the run's move
    and its events, in one transaction; an unchanged round waiting in memory is dropped, never
    flushed over the failure; a run that cannot move gets none of it."""
    from pipewarden.engine.domain.errors import IllegalTransition
    from pipewarden.engine.domain.events import draft
    from pipewarden.engine.domain.gates import FAIL
    from pipewarden.engine.domain.status import StageRunStatus as S

    execution, run = run_of(late_store)
    for second, status in enumerate((S.DEPLOYING, S.BAKING), start=2):
        late_store.set_stage_run_status(run, status, now=at(second))
    late_store.record_gates(run, [("datapoints", waiting(10))], now=at(4))
    late_store.record_gates(run, [("datapoints", waiting(30))], now=at(6))  # waits in memory
    failed = FAIL("negative_datapoints", "1 negative of at most 0", inputs={"negative": 1})
    events = [(draft("bake_finished", time=at(8), pipeline="shop", execution=execution, stage="canary",
                     data={"result": "failed", "reason": "datapoints: 1 negative"}), f"{execution}/bake_finished")]
    moved = late_store.fail_stage_run(run, [("datapoints", failed)], S.ROLLING_BACK, now=at(8),
                                      reason="datapoints: 1 negative", events=events)
    assert moved.status is S.ROLLING_BACK
    assert late_store.flush_gates() == 0  # the waiting round was dropped: it cannot overwrite the failure
    assert stored(tmp_path)[1:] == ("1 negative of at most 0", at(8).isoformat(timespec="milliseconds")
                                    .replace("+00:00", "Z"), "fail")
    types = [event.type for event in late_store.events(execution=execution)]
    assert types[-2:] == ["gate", "bake_finished"]
    # A run that has rolled back cannot move: nothing of the round is written.
    other, second_run = run_of(late_store)
    for second, status in enumerate((S.DEPLOYING, S.BAKING, S.ROLLING_BACK, S.ROLLED_BACK), start=2):
        late_store.set_stage_run_status(second_run, status, now=at(second))
    with pytest.raises(IllegalTransition):
        late_store.fail_stage_run(second_run, [("datapoints", failed)], S.ROLLING_BACK, now=at(9))
    assert late_store.gate_evaluations(second_run) == {}
    assert gate_events(late_store, other) == []
