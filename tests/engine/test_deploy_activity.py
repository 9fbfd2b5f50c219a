"""The deploy activity (A_DEPLOY) on its own (Temporal's ActivityEnvironment, real git, real hook
processes, a real store): a whole stage's hooks in one activity, with the guarantees hooks had as
activities of their own: order and parallelism, no new hook after the first failed host, a retried
deploy never runs a completed hook again and runs a cut-off one as attempt 2, and the workflow's
halt (cancel, tripwire) read before every hook."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment
from workflow_helpers import packed_repo

from pipewarden.engine.activities.artifacts import ArtifactStore
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.contract import DeployRequest, DeployTarget, HookSpec
from pipewarden.engine.store import EngineStore

HOOKS = [HookSpec(phase, "./hooks/hook.sh") for phase in ("stop", "install", "start", "validate")]
HALT = "demo-app-1/run/1/deploy"


def _target(name: str, batches: list[list[str]], commit: str, hooks: list[HookSpec] | None = None) -> DeployTarget:
    return DeployTarget(name, batches, hooks or HOOKS, commit[:12], commit, 30, False)


def _request(repo: Path, commit: str, targets: list[DeployTarget], *, rollback: bool = False) -> DeployRequest:
    hosts = [host for target in targets for batch in target.batches for host in batch]
    return DeployRequest("demo-app-1", "demo-app", str(repo), "beta", hosts, targets, rollback, HALT)


def _environment(attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="demo-app-1", activity_id="5", attempt=attempt)
    return env


def _lines(record: Path) -> list[list[str]]:
    return [line.split() for line in record.read_text().splitlines()] if record.exists() else []


def test_every_hook_runs_in_order_on_every_host_and_leases_are_given_back(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    targets = [_target("cell-a", [["a1", "a2"], ["a3"]], commit), _target("cell-b", [["b1"], ["b2"]], commit)]
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        answer = _environment().run(EngineActivities(store, state).run_deploy, _request(repo, commit, targets))
        assert answer.ok and answer.failure is None and not answer.halted
        lines = _lines(record)
        by_host: dict[str, list[str]] = {}
        for _, target, host, hook, *_ in lines:
            by_host.setdefault(host, []).append(hook)
        assert by_host == {host: ["stop", "install", "start", "validate"] for host in ("a1", "a2", "a3", "b1", "b2")}
        hosts_in_order = [line[2] for line in lines]
        # batches in order: a3 starts only after both hosts of the first batch finished
        assert hosts_in_order.index("a3") > max(i for i, h in enumerate(hosts_in_order) if h in ("a1", "a2"))
        assert hosts_in_order.index("b2") > max(i for i, h in enumerate(hosts_in_order) if h == "b1")
        assert all(store.host_lease(host) is None for host in by_host)
        assert {h.state for h in store.hosts("demo-app").values()} == {"ok"}
        assert len(store.events(types=["hook"])) == 20
        assert store.verify() is None


def test_after_the_first_failed_host_no_new_hook_starts(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    failing = [*HOOKS[:2], HookSpec("start", 'if [ "$PIPEWARDEN_HOST" = a1 ]; then exit 7; fi; ./hooks/hook.sh'),
               HOOKS[3]]
    targets = [_target("cell-a", [["a1"], ["a2"]], commit, failing)]
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        answer = _environment().run(EngineActivities(store, state).run_deploy, _request(repo, commit, targets))
        assert not answer.ok and not answer.halted
        assert answer.failure is not None and answer.failure.startswith("hook start on a1 exited 7 (output in ")
        assert [(line[2], line[3]) for line in _lines(record)] == [("a1", "stop"), ("a1", "install")]
        assert store.hosts("demo-app")["a1"].state == "failed"
        assert store.host_lease("a1") is None


def test_a_retried_deploy_skips_completed_hooks_and_reruns_the_one_cut_off(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    targets = [_target("cell-a", [["a1"]], commit)]
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        activities = EngineActivities(store, state)
        assert _environment(1).run(activities.run_deploy, _request(repo, commit, targets)).ok
        assert len(_lines(record)) == 4
        # attempt 2 of the same activity (its worker died after the last hook): nothing runs again
        assert _environment(2).run(activities.run_deploy, _request(repo, commit, targets)).ok
        assert len(_lines(record)) == 4
        # a crash cut `validate` off in attempt 1: attempt 2 records it interrupted and runs it again
        run_id = _environment().info.workflow_run_id
        key = f"demo-app-1/{run_id}/5/deploy/cell-a/a1/validate"
        store.begin_hook_run(key.replace("/5/", "/6/"), execution="demo-app-1", pipeline="demo-app", stage="beta",
                             target="cell-a", host="a1", hook="validate", artifact=commit[:12],
                             now=datetime.now(UTC))
        env = ActivityEnvironment()
        env.info = dataclasses.replace(_environment(2).info, activity_id="6")
        assert env.run(activities.run_deploy, _request(repo, commit, targets)).ok
        runs = store.hook_runs(key=key.replace("/5/", "/6/"))
        assert [(run.attempt, run.interrupted, run.exit_code) for run in runs] == [(1, True, None), (2, False, 0)]
        assert store.verify() is None


def test_a_halt_stops_new_hooks_but_lets_the_running_one_finish(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    slow = [HookSpec("stop", "sleep 0.6; ./hooks/hook.sh"), *HOOKS[1:]]
    targets = [_target("cell-a", [["a1"], ["a2"]], commit, slow)]
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))

        def halt() -> None:
            time.sleep(0.2)
            store.halt_deploy(HALT, "cancelled by dana", now=datetime.now(UTC))

        thread = threading.Thread(target=halt)
        thread.start()
        answer = _environment().run(EngineActivities(store, state).run_deploy, _request(repo, commit, targets))
        thread.join()
        assert not answer.ok and answer.halted and answer.failure is None
        assert [(line[2], line[3]) for line in _lines(record)] == [("a1", "stop")]
        assert store.deploy_halted(HALT) == "cancelled by dana"


def test_a_rollback_is_not_halted(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        store.halt_deploy(HALT, "cancelled by dana", now=datetime.now(UTC))
        request = _request(repo, commit, [_target("cell-a", [["a1"]], commit)], rollback=True)
        assert _environment().run(EngineActivities(store, state).run_deploy, request).ok
        assert [line[-1] for line in _lines(record)] == ["rollback=1"] * 4


def test_an_unreadable_artifact_fails_the_host_with_a_reason(tmp_path: Path) -> None:
    repo, state, commit, record = packed_repo(tmp_path)
    targets = [DeployTarget("cell-a", [["a1"]], HOOKS, "ffffffffffff", commit, 30, False)]
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        answer = _environment().run(EngineActivities(store, state).run_deploy, _request(repo, commit, targets))
        assert not answer.ok and answer.failure is not None
        assert answer.failure.startswith("hook stop on a1 could not run: ")
        assert _lines(record) == []


def test_hosts_unpacking_the_same_artifact_at_once_all_get_it(tmp_path: Path) -> None:
    """The hosts of a batch start together and each asks for the artifact's checkout and unpacked
    content: the first to finish publishes it, the others keep theirs out of the way."""
    repo, state, commit, _ = packed_repo(tmp_path)
    artifacts = ArtifactStore(state)
    shutil.rmtree(artifacts.checkout_dir(commit[:12]))
    with ThreadPoolExecutor(max_workers=8) as pool:
        unpacked = list(pool.map(lambda _: artifacts.unpack(commit[:12]), range(8)))
        checkouts = list(pool.map(lambda _: artifacts.ensure_checkout(str(repo), commit, commit[:12]), range(8)))
    assert {path.name for path in unpacked} == {"artifact"}
    assert (unpacked[0] / "app.txt").read_text() == "v1\n"
    assert (checkouts[0] / ".git").exists() and (checkouts[0] / "pipeline.yaml").exists()
    assert [p.name for p in unpacked[0].parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_host_whose_lease_another_hook_run_holds_waits_for_it_then_runs_all_its_hooks(tmp_path: Path) -> None:
    """The first hook asks for the lease with its start (one write); refused, the deploy waits for
    the lease as before and then runs every hook, giving the lease back at the end."""
    repo, state, commit, record = packed_repo(tmp_path)
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        assert store.acquire_host_lease("a1", "another-deploy/lease", 1, now=datetime.now(UTC), seconds=60)
        released: list[datetime] = []

        def release() -> None:
            released.append(datetime.now(UTC))
            store.release_host_lease("a1", "another-deploy/lease")

        releaser = threading.Timer(1.0, release)
        releaser.start()
        try:
            answer = _environment().run(EngineActivities(store, state).run_deploy,
                                        _request(repo, commit, [_target("cell-a", [["a1"]], commit)]))
        finally:
            releaser.join()
        assert answer.ok
        assert [line[3] for line in _lines(record)] == ["stop", "install", "start", "validate"]
        assert store.host_lease("a1") is None
        runs = store.hook_runs(execution="demo-app-1")
        assert [run.attempt for run in runs] == [1, 1, 1, 1]
        assert min(run.started for run in runs) >= released[0]  # no hook began while the other held the host
