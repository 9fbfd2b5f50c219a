"""The engine store on real SQLite files (store/)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from engine_helpers import T0, at

from pipewarden.engine.domain import overrides
from pipewarden.engine.domain.errors import IllegalTransition, Refused
from pipewarden.engine.domain.events import draft
from pipewarden.engine.domain.gates import PASS, WAIT
from pipewarden.engine.domain.rollback import BakePassed, RolledBackFrom, last_good
from pipewarden.engine.domain.status import ExecutionStatus as E
from pipewarden.engine.domain.status import StageRunStatus as S
from pipewarden.engine.store import EngineStore, default_url

COMMIT = "9f8e7d6c5b4a" + "1" * 28
COMMIT2 = "0123456789ab" + "2" * 28



def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "state" / "engine.db")


def paused_event(i: int, pipeline: str = "shop") -> object:
    return draft("paused", time=at(i), actor="dana", pipeline=pipeline, data={"reason": f"r{i}"})


def test_default_url_and_pragmas(tmp_path: Path, store: EngineStore) -> None:
    assert default_url(tmp_path / "state") == f"sqlite:///{(tmp_path / 'state' / 'engine.db').resolve()}"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_append_assigns_seq_and_chain(store: EngineStore) -> None:
    first = store.append_event(paused_event(0))  # type: ignore[arg-type]
    second = store.append_event(paused_event(1))  # type: ignore[arg-type]
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "0" * 64 and second.prev_hash == first.hash
    assert store.head().seq == 2 and store.head().hash == second.hash
    assert store.events() == [first, second]
    assert store.verify() is None


def test_append_is_idempotent_by_key(tmp_path: Path, store: EngineStore) -> None:
    first = store.append_event(paused_event(0), key="wf-1/act-3")  # type: ignore[arg-type]
    again = store.append_event(paused_event(5), key="wf-1/act-3")  # type: ignore[arg-type]
    assert again == first
    assert len(store.events()) == 1 and store.head().seq == 1
    assert store.event_by_key("wf-1/act-3") == first
    with db(tmp_path) as conn:
        assert conn.execute("select count(*) from events").fetchone() == (1,)


def test_event_filters(store: EngineStore) -> None:
    store.append_event(paused_event(0, "shop"))  # type: ignore[arg-type]
    store.append_event(paused_event(10, "cart"))  # type: ignore[arg-type]
    execution = store.create_execution("shop", COMMIT, trigger="release", now=at(20), actor="dana")
    assert [e.seq for e in store.events(pipeline="shop")] == [1, 3]
    assert [e.type for e in store.events(execution=execution.id)] == ["execution_started"]
    assert [e.seq for e in store.events(since=at(10))] == [2, 3]
    assert [e.seq for e in store.events(after_seq=1, limit=1)] == [2]
    assert [e.seq for e in store.events(types=["execution_started"])] == [3]


def test_data_is_json_text_one_column_per_key(tmp_path: Path, store: EngineStore) -> None:
    store.create_execution("shop", COMMIT, trigger="poll", now=T0)
    with db(tmp_path) as conn:
        columns = [row[1] for row in conn.execute("pragma table_info(events)")]
        assert columns[:12] == ["seq", "time", "type", "pipeline", "execution", "stage", "target", "host", "actor",
                                "data", "prev_hash", "hash"]
        assert conn.execute("select data, time from events").fetchone() == (
            f'{{"commit":"{COMMIT}","trigger":"poll"}}', "2026-12-01T15:00:00.000Z")


@pytest.mark.parametrize(("sql", "bad_seq"), [
    ("update events set data = '{\"reason\":\"R1\"}' where seq = 2", 2),
    ("update events set actor = 'mallory' where seq = 3", 3),
    ("update events set hash = replace(hash, substr(hash, 1, 1), 'x') where seq = 1", 1),
    ("delete from events where seq = 2", 2),
    ("delete from events where seq >= 3", 3),                   # the last events, head kept
    ("update events set seq = 9 where seq = 4", 4),
    ("update chain_head set seq = 3", 4),
    ("update events set data = 'not json' where seq = 2", 2),
    ("update events set data = '[1]' where seq = 2", 2),
    ("delete from chain_head", 5),
    ("update events set time = '2026-12-01T15:00:00.001Z' where seq = 1", 1),
])
def test_verify_finds_tampering(tmp_path: Path, store: EngineStore, sql: str, bad_seq: int) -> None:
    for i in range(4):
        store.append_event(paused_event(i))  # type: ignore[arg-type]
    assert store.verify() is None
    with db(tmp_path) as conn:
        conn.execute(sql)
    found = store.verify()
    assert found is not None and found.seq == bad_seq, found


def test_whitespace_in_data_text_is_not_tampering(tmp_path: Path, store: EngineStore) -> None:
    """engine.md hashes `data` as the JSON object it is, not as text."""
    store.append_event(paused_event(0))  # type: ignore[arg-type]
    with db(tmp_path) as conn:
        conn.execute("update events set data = '{ \"reason\" : \"r0\" }'")
    assert store.verify() is None


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with EngineStore.for_state_dir(tmp_path / "state") as s:
        s.create_execution("shop", COMMIT, trigger="poll", now=T0)
    with EngineStore.for_state_dir(tmp_path / "state") as s:
        assert s.head().seq == 1 and s.verify() is None
        assert s.create_execution("shop", COMMIT2, trigger="poll", now=at(1)).id == "shop-2"


def test_executions_number_per_pipeline_and_idempotent(store: EngineStore) -> None:
    assert store.next_execution_number("shop") == 1
    a = store.create_execution("shop", COMMIT, trigger="poll", now=T0, key="poll:shop:" + COMMIT)
    b = store.create_execution("cart", COMMIT, trigger="poll", now=at(1))
    c = store.create_execution("shop", COMMIT2, trigger="release", now=at(2), actor="dana")
    assert (a.id, b.id, c.id) == ("shop-1", "cart-1", "shop-2")
    assert store.create_execution("shop", COMMIT, trigger="poll", now=at(3), key="poll:shop:" + COMMIT) == a
    assert store.next_execution_number("shop") == 3
    assert [e.id for e in store.executions()] == ["shop-2", "cart-1", "shop-1"]
    assert [e.id for e in store.executions(pipeline="shop", limit=1)] == ["shop-2"]
    shop = store.pipeline("shop")
    assert shop is not None and shop.last_commit == COMMIT  # poll marks it, release does not
    started = store.events(types=["execution_started"])
    assert [(e.execution, e.actor, e.data["trigger"]) for e in started] == [
        ("shop-1", "engine", "poll"), ("cart-1", "engine", "poll"), ("shop-2", "dana", "release")]


def test_execution_status_follows_the_table(store: EngineStore) -> None:
    execution = store.create_execution("shop", COMMIT, trigger="poll", now=T0)
    store.set_execution_artifact(execution.id, COMMIT[:12])
    failed = store.set_execution_status(execution.id, E.FAILED, now=at(5), reason="hook failed", key="fin-1")
    assert failed.status is E.FAILED and failed.finished == at(5) and failed.artifact == COMMIT[:12]
    assert store.set_execution_status(execution.id, E.FAILED, now=at(6)) == failed  # repeated: nothing written
    running = store.set_execution_status(execution.id, E.RUNNING, now=at(7))  # retry
    assert running.finished is None
    store.set_execution_status(execution.id, E.SUCCEEDED, now=at(8))
    with pytest.raises(IllegalTransition):
        store.set_execution_status(execution.id, E.RUNNING, now=at(9))
    finished = store.events(types=["execution_finished"])
    assert [e.data for e in finished] == [{"status": "failed", "reason": "hook failed"},
                                          {"status": "succeeded", "reason": None}]


def test_stage_runs_gates_and_occupants(store: EngineStore) -> None:
    a = store.create_execution("shop", COMMIT, trigger="poll", now=T0)
    store.set_execution_artifact(a.id, COMMIT[:12])
    run = store.start_stage_run(a.id, "beta", now=at(1))
    assert (run.status, run.attempt, run.artifact) == (S.WAITING, 1, COMMIT[:12])
    assert store.start_stage_run(a.id, "beta", now=at(1)) == run  # a retried activity: the same run
    execution = store.execution(a.id)
    assert execution is not None and execution.stage == "beta"
    first = store.record_gate(run.id, "approval", WAIT("approval_missing", "waiting for approval: qa"), now=at(2))
    assert first is not None and first.data["code"] == "approval_missing" and first.stage == "beta"
    assert store.record_gate(run.id, "approval", WAIT("approval_missing", "waiting for approval: qa"), now=at(3)) is None
    assert store.record_gate(run.id, "approval", PASS("every approval given"), now=at(4)) is not None
    assert store.record_gate(run.id, "paused", PASS(), now=at(4)) is not None
    assert list(store.gate_evaluations(run.id)) == ["approval", "paused"]
    assert store.gate_evaluations(run.id)["approval"].passed
    deploying = store.set_stage_run_status(run.id, S.DEPLOYING, now=at(5), events=[
        (draft("stage_started", time=at(5), pipeline="shop", execution=a.id, stage="beta",
               data={"artifact": COMMIT[:12]}), f"{a.id}:beta:1:stage_started")])
    assert deploying.deployed and store.occupants("shop", "beta")[0].execution == a.id
    baking = store.set_stage_run_status(run.id, S.BAKING, now=at(6))
    assert baking.bake_started == at(6)
    with pytest.raises(IllegalTransition):
        store.set_stage_run_status(run.id, S.WAITING, now=at(7))
    store.record_bake_passed(run.id, ["beta-1"], now=at(8))
    store.record_bake_passed(run.id, ["beta-1"], now=at(9))  # idempotent
    done = store.set_stage_run_status(run.id, S.SUCCEEDED, now=at(10))
    assert done.finished == at(10) and done.bake_passed == at(8)
    assert store.occupants("shop", "beta") == []
    retry = store.start_stage_run(a.id, "beta", now=at(11))
    assert retry.attempt == 2
    assert [r.id for r in store.stage_runs(execution=a.id)] == [run.id, retry.id]
    assert [e.type for e in store.events(execution=a.id)] == ["execution_started", "gate", "gate", "gate",
                                                              "stage_started"]


def test_target_history_feeds_last_good(store: EngineStore) -> None:
    for i, commit in enumerate((COMMIT, COMMIT2)):
        e = store.create_execution("shop", commit, trigger="poll", now=at(i))
        store.set_execution_artifact(e.id, commit[:12])
        run = store.start_stage_run(e.id, "prod", now=at(i))
        store.record_bake_passed(run.id, ["cell-1", "cell-2"], now=at(10 + i))
    store.record_rolled_back("shop", "prod", "cell-2", COMMIT2[:12], now=at(20))
    history = store.target_history("shop", "prod")
    assert history[0] == BakePassed(COMMIT[:12], "cell-1", at(10))
    assert history[-1] == RolledBackFrom(COMMIT2[:12], "cell-2", at(20))
    intact = {COMMIT[:12], COMMIT2[:12]}
    assert last_good("cell-1", "f" * 12, history, blocklisted=set(), intact=intact) == COMMIT2[:12]
    assert last_good("cell-2", "f" * 12, history, blocklisted=set(), intact=intact) == COMMIT[:12]


def test_hosts(store: EngineStore) -> None:
    art1, art2 = COMMIT[:12], COMMIT2[:12]
    store.set_host_state("shop", "beta", "beta-1", "Host-1:80", state="deploying", artifact=art1, execution="shop-1",
                         now=T0)
    ok = store.set_host_state("shop", "beta", "beta-1", "host-1:80", state="ok", artifact=art1, execution="shop-1",
                              now=at(1))
    assert (ok.artifact, ok.state, ok.deploying_artifact) == (art1, "ok", None)
    failed = store.set_host_state("shop", "beta", "beta-1", "HOST-1.:80", state="failed", artifact=art2,
                                  execution="shop-2", now=at(2))
    assert (failed.artifact, failed.state, failed.deploying_artifact) == (art1, "failed", art2)
    assert list(store.hosts("shop")) == ["host-1:80"]
    with pytest.raises(ValueError):
        store.set_host_state("shop", "beta", "beta-1", "h:1", state="weird", artifact=art1, execution=None, now=T0)


def test_hook_runs_idempotent_and_interrupted(store: EngineStore) -> None:
    art = COMMIT[:12]
    where = {"execution": "shop-1", "pipeline": "shop", "stage": "beta", "target": "beta-1", "host": "H1:80",
             "hook": "start", "artifact": art}
    start = store.begin_hook_run("shop-1/deploy-beta-h1-start", now=T0, log="logs/a.1.log", **where)
    assert not start.completed and start.run.attempt == 1 and start.interrupted is None
    store.set_hook_pgid("shop-1/deploy-beta-h1-start", 1, 4242)
    # the worker dies here; the retried activity finds attempt 1 cut off
    retry = store.begin_hook_run("shop-1/deploy-beta-h1-start", now=at(3), log="logs/a.2.log", **where)
    assert retry.interrupted is not None and retry.interrupted.pgid == 4242 and retry.interrupted.interrupted
    assert retry.run.attempt == 2 and not retry.completed
    run, written = store.finish_hook_run("shop-1/deploy-beta-h1-start", 2, exit_code=0, timed_out=False,
                                         duration_ms=1500, now=at(4))
    assert run.succeeded and written.data["attempt"] == 2
    again, same = store.finish_hook_run("shop-1/deploy-beta-h1-start", 2, exit_code=0, timed_out=False,
                                        duration_ms=1500, now=at(9))
    assert same == written and again == run
    done = store.begin_hook_run("shop-1/deploy-beta-h1-start", now=at(5), **where)
    assert done.completed and done.run == run
    hooks = store.events(types=["hook"])
    assert [(e.data["attempt"], e.data["interrupted"], e.data["exit_code"]) for e in hooks] == [
        (1, True, None), (2, False, 0)]
    assert hooks[0].host == "H1:80" and hooks[0].target == "beta-1"
    store.begin_hook_run("shop-1/deploy-beta-h2-start", now=at(6), **{**where, "host": "h2:80"})
    store.begin_hook_run("shop-1/deploy-beta-h1-validate", now=at(6), **{**where, "host": "h1:80", "hook": "validate"})
    assert store.hosts_with_hooks("shop", "beta", art) == ["H1:80", "h2:80"]
    assert store.hosts_with_hooks("shop", "beta", "f" * 12) == []
    assert len(store.hook_runs(execution="shop-1")) == 4
    assert store.verify() is None


def test_overrides(store: EngineStore) -> None:
    first = overrides.grant("window", pipeline="shop", stage="prod", actor="dana", reason="hotfix", now=T0)
    granted = store.put_override(first, key="req-1")
    assert granted.type == "override_granted" and granted.actor == "dana"
    assert store.put_override(first, key="req-1") == granted
    second = overrides.grant("window", pipeline="shop", stage="prod", actor="lee", reason="again", now=at(10),
                             ttl_seconds=60)
    store.put_override(second)
    assert store.overrides(pipeline="shop") == [second]
    with pytest.raises(Refused):
        store.put_override(overrides.Override("policy", "shop", "prod", "x", "y", T0, at(1)))
    assert store.expire_overrides(at(69)) == []
    expired = store.expire_overrides(at(70))
    assert [e.type for e in expired] == ["override_expired"] and store.overrides() == []
    store.put_override(overrides.grant("alarms", pipeline="shop", stage="prod", actor="dana", reason="r", now=at(80)))
    revoked = store.revoke_override("shop", "prod", "alarms", actor="lee", now=at(81))
    assert revoked.type == "override_revoked" and revoked.actor == "lee"
    with pytest.raises(Refused):
        store.revoke_override("shop", "prod", "alarms", actor="lee", now=at(82))
    assert store.verify() is None


def test_pause_resume_refuse(store: EngineStore) -> None:
    paused = store.set_paused("shop", True, actor="dana", reason="incident", now=T0, key="p1")
    assert paused.type == "paused" and paused.data == {"reason": "incident"}
    assert store.set_paused("shop", True, actor="dana", now=at(1), key="p1") == paused
    record = store.pipeline("shop")
    assert record is not None and record.paused and record.paused_by == "dana"
    with pytest.raises(Refused):
        store.set_paused("shop", True, actor="dana", now=at(2))
    store.set_paused("shop", False, actor="lee", now=at(3))
    refused = store.refuse("promote", "shop-1 is not awaiting promotion", actor="lee", now=at(4), pipeline="shop")
    assert refused.data == {"action": "promote", "reason": "shop-1 is not awaiting promotion"}
    store.set_last_commit("shop", COMMIT2, now=at(5))
    assert [p.last_commit for p in store.pipelines()] == [COMMIT2]


def test_the_halts_of_ended_stage_runs_are_pruned(store: EngineStore) -> None:
    execution = store.create_execution("shop", COMMIT, trigger="poll", now=T0)
    run = store.start_stage_run(execution.id, "beta", now=at(1))
    store.set_stage_run_status(run.id, S.DEPLOYING, now=at(2))
    deploy = f"{execution.id}/{run.id}/deploy"
    store.halt_deploy(deploy, "cancelled by dana", now=at(3))
    store.halt_deploy("not-a-halt-key", "kept", now=at(3))
    assert store.prune_deploy_halts() == 0  # the deploy may still be running: it reads its halt
    assert store.deploy_halted(deploy) == "cancelled by dana"
    store.set_stage_run_status(run.id, S.CANCELLED, now=at(4))
    assert store.prune_deploy_halts() == 1
    assert store.deploy_halted(deploy) is None
    assert store.deploy_halted("not-a-halt-key") == "kept"  # a key that does not name a stage run stays
    assert store.prune_deploy_halts() == 0


def test_stage_runs_by_pipelines_and_statuses(tmp_path: Path) -> None:
    """What the server's wake-up reads: the runs of the woken pipelines in the given statuses."""
    with EngineStore.for_state_dir(tmp_path) as store:
        runs = {}
        for name in ("shop", "cart", "mail"):
            execution = store.create_execution(name, "c" * 40, trigger="release", now=T0)
            runs[name] = store.start_stage_run(execution.id, "beta", now=at(1)).id
        store.set_stage_run_status(runs["shop"], S.DEPLOYING, now=at(2))
        store.set_stage_run_status(runs["cart"], S.DEPLOYING, now=at(2))
        store.set_stage_run_status(runs["mail"], S.DEPLOYING, now=at(2))
        store.set_stage_run_status(runs["cart"], S.BAKING, now=at(3))
        found = store.stage_runs(pipelines=["shop", "cart"], statuses={S.BAKING, S.DEPLOYING})
        assert [(run.pipeline, run.status) for run in found] == [("shop", S.DEPLOYING), ("cart", S.BAKING)]
        assert [run.pipeline for run in store.stage_runs(pipelines=["mail"], statuses={S.BAKING})] == []
        assert len(store.stage_runs(statuses={S.DEPLOYING})) == 2
