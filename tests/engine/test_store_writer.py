"""The store's writes in a process of their own (store/writer.py, `separate_writer`): real writer
processes on a real SQLite file. Writes answer as in process, their errors come back as the same
types, readers see each write once it has answered, many threads keep the chain valid, the writer
ends with the store (and not on SIGTERM), and a killed writer is started again; the writes on the
way to a rollback's first hook go before the others waiting."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import T0, at

from pipewarden.engine.domain.errors import IllegalTransition
from pipewarden.engine.domain.events import draft
from pipewarden.engine.domain.gates import WAIT
from pipewarden.engine.domain.status import ExecutionStatus
from pipewarden.engine.store import EngineStore, default_url
from pipewarden.engine.store.writer import Pending, RemoteWriter, WriterGone

COMMIT = "9f8e7d6c5b4a" + "3" * 28


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[EngineStore]:
    with EngineStore(default_url(tmp_path / "state"), separate_writer=True) as opened:
        yield opened


def writer_pid(store: EngineStore) -> int:
    remote = store._remote
    assert remote is not None and remote._process is not None
    return remote._process.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (ended, not yet reaped) counts as ended
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_writes_answer_as_in_process_and_readers_see_them(remote: EngineStore, tmp_path: Path) -> None:
    execution = remote.create_execution("shop", COMMIT, trigger="release", now=T0)
    assert execution.id == "shop-1"
    run = remote.start_stage_run(execution.id, "beta", now=at(1))
    [event] = remote.record_gates(run.id, [("approval", WAIT("approval_missing", "waiting for qa"))], now=at(2))
    assert event is not None and event.type == "gate" and event.stage == "beta"
    assert remote.stage_run(run.id).status == run.status
    assert list(remote.gate_evaluations(run.id)) == ["approval"]
    with EngineStore.for_state_dir(tmp_path / "state") as other:  # another reader of the file
        assert [e.seq for e in other.events(execution=execution.id) if e.type == "gate"] == [event.seq]
    assert remote.verify() is None


def test_an_error_in_the_writer_is_raised_with_its_type(remote: EngineStore) -> None:
    execution = remote.create_execution("shop", COMMIT, trigger="release", now=T0)
    remote.set_execution_status(execution.id, ExecutionStatus.RUNNING, now=at(1))
    remote.set_execution_status(execution.id, ExecutionStatus.SUCCEEDED, now=at(2))
    with pytest.raises(IllegalTransition) as raised:
        remote.set_execution_status(execution.id, ExecutionStatus.RUNNING, now=at(3))
    assert (raised.value.current, raised.value.new) == ("succeeded", "running")


def test_many_threads_keep_the_chain_gap_free(remote: EngineStore) -> None:
    def append(thread: int) -> None:
        for number in range(25):
            remote.append_event(draft("refused", time=at(thread), pipeline="shop",
                                      data={"action": "release", "reason": f"{thread}/{number}"}),
                                key=f"t{thread}-{number}")

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert remote.head().seq == 200
    assert remote.verify() is None
    append(0)  # the same keys again: nothing new
    assert remote.head().seq == 200


def test_a_write_that_fails_among_many_undoes_only_itself(remote: EngineStore) -> None:
    # Writes from many threads at once: the failing one raises its own error and changes nothing.
    execution = remote.create_execution("shop", COMMIT, trigger="release", now=T0)
    remote.set_execution_status(execution.id, ExecutionStatus.RUNNING, now=at(1))
    remote.set_execution_status(execution.id, ExecutionStatus.SUCCEEDED, now=at(2))
    failures: list[BaseException] = []

    def illegal() -> None:
        for _ in range(20):
            try:
                remote.set_execution_status(execution.id, ExecutionStatus.RUNNING, now=at(3))
            except IllegalTransition as error:
                failures.append(error)

    def append(thread: int) -> None:
        for number in range(20):
            remote.append_event(draft("refused", time=at(4), pipeline="shop",
                                      data={"action": "release", "reason": f"{thread}/{number}"}))

    threads = [threading.Thread(target=illegal), *(threading.Thread(target=append, args=(n,)) for n in range(4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures) == 20
    refused = [e for e in remote.events(types=["refused"])]
    assert len(refused) == 80
    assert remote.verify() is None
    record = remote.execution(execution.id)
    assert record is not None and record.status is ExecutionStatus.SUCCEEDED


def test_the_writer_ends_with_the_store_and_not_on_sigterm(tmp_path: Path) -> None:
    store = EngineStore(default_url(tmp_path / "state"), separate_writer=True)
    pid = writer_pid(store)
    os.kill(pid, signal.SIGTERM)  # a stop of the server's process group must not end it first
    store.create_execution("shop", COMMIT, trigger="release", now=T0)
    assert writer_pid(store) == pid
    store.close()
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, "the writer outlived its store"
        time.sleep(0.02)


def test_a_killed_writer_is_started_again_at_the_next_write(remote: EngineStore) -> None:
    remote.create_execution("shop", COMMIT, trigger="release", now=T0)
    pid = writer_pid(remote)
    os.kill(pid, signal.SIGKILL)
    gone = remote._remote._process if remote._remote is not None else None
    assert gone is not None
    deadline = time.monotonic() + 10
    while gone.returncode is None:  # the store has seen its writer end (a write sent before fails)
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = remote.create_execution("shop", COMMIT, trigger="release", now=at(1))
    assert second.id == "shop-2"
    assert writer_pid(remote) != pid


def test_a_writer_that_cannot_open_its_store_is_an_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(WriterGone, match="could not start"):
        RemoteWriter(f"sqlite:///{blocked}/state/engine.db")


def test_many_large_writes_at_once_never_deadlock_the_pipes(remote: EngineStore) -> None:
    """Frames larger than a pipe's buffer both ways from many threads: a sender blocked on a full
    pipe to the writer must not keep the answers' thread from draining the pipe back (the writer
    is then blocked sending an answer, and stops reading)."""
    big = ["x" * 200_000]
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for round_ in range(3):
                event = remote.append_event(draft("config_reloaded", time=at(worker * 10 + round_),
                                                  data={"files": [*big, f"{worker}-{round_}"]}))
                assert event.data["files"][-1] == f"{worker}-{round_}"
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(worker,), daemon=True) for worker in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "the writes hung"
    assert errors == []
    assert len(remote.events(types=["config_reloaded"])) == 36
    assert remote.verify() is None


def test_the_writes_on_the_way_to_a_rollback_go_before_the_others_waiting() -> None:
    pending = Pending()
    for ident, method, kwargs in [(1, "finish_hook_run", {}), (2, "set_hook_pgid", {}),
                                  (3, "begin_hook_run", {"first": False}), (4, "set_stage_run_status", {}),
                                  (5, "begin_hook_run", {"first": True, "rollback": True}),
                                  (6, "_record_gates_now", {}), (7, "_write_latest_gates", {}),
                                  (8, "acquire_host_lease", {})]:
        pending.add((ident, method, (), kwargs))
    order = []
    while pending:
        order.append(pending.next()[0])
    assert order == [4, 5, 6, 8, 1, 2, 3, 7]  # urgent ones first, each kind in arrival order
