"""One hook per host across workers: the store's host leases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine_helpers import at

from pipewarden.engine.store import EngineStore


def test_a_held_lease_is_refused_to_another_hook_run_until_released_or_expired(tmp_path: Path) -> None:
    with EngineStore.for_state_dir(tmp_path) as store:
        assert store.acquire_host_lease("Cell-1:80", "wf-1/3/hook", 1, now=at(0), seconds=60)
        # the same host in another spelling is the same host
        assert not store.acquire_host_lease("cell-1:80", "wf-2/5/hook", 1, now=at(1), seconds=60)
        assert store.host_lease("CELL-1:80") == ("wf-1/3/hook", 1, at(60))
        store.release_host_lease("cell-1:80", "wf-2/5/hook")  # not the holder: nothing happens
        assert not store.acquire_host_lease("cell-1:80", "wf-2/5/hook", 1, now=at(2), seconds=60)
        store.release_host_lease("cell-1:80", "wf-1/3/hook")
        assert store.host_lease("cell-1:80") is None
        assert store.acquire_host_lease("cell-1:80", "wf-2/5/hook", 1, now=at(3), seconds=60)
        # expired: another hook run takes it over
        assert store.acquire_host_lease("cell-1:80", "wf-3/1/hook", 1, now=at(63), seconds=60)
        # another host is independent
        assert store.acquire_host_lease("cell-2:80", "wf-2/5/hook", 1, now=at(64), seconds=60)


def test_a_later_attempt_of_the_same_hook_run_takes_its_lease_over(tmp_path: Path) -> None:
    with EngineStore.for_state_dir(tmp_path) as store:
        assert store.acquire_host_lease("cell-1:80", "wf-1/3/hook", 1, now=at(0), seconds=600)
        assert store.acquire_host_lease("cell-1:80", "wf-1/3/hook", 2, now=at(30), seconds=600)
        assert store.host_lease("cell-1:80") == ("wf-1/3/hook", 2, at(630))
        # events are untouched by leases
        assert store.head().seq == 0


def test_the_first_hook_takes_the_lease_and_begins_in_one_write_or_does_nothing(tmp_path: Path) -> None:
    """`lease_and_begin_hook_run`: granted, the lease and the hook run's start (the host
    `deploying`) are written together; refused (another hook run holds the host), nothing is."""
    with EngineStore.for_state_dir(tmp_path) as store:
        begin: dict[str, Any] = {"execution": "demo-app-1", "pipeline": "demo-app", "stage": "beta",
                                 "target": "cell-1", "host": "cell-1:80", "hook": "stop", "artifact": "a" * 12,
                                 "now": at(0), "first": True}
        assert store.acquire_host_lease("cell-1:80", "wf-9/1/lease", 1, now=at(0), seconds=60)
        refused = store.lease_and_begin_hook_run("wf-1/3/stop", holder="wf-1/3/lease", attempt=1, seconds=60,
                                                 **begin)
        assert refused is None and store.hook_run("wf-1/3/stop") is None and store.hosts("demo-app") == {}
        store.release_host_lease("cell-1:80", "wf-9/1/lease")
        started = store.lease_and_begin_hook_run("wf-1/3/stop", holder="wf-1/3/lease", attempt=1, seconds=60,
                                                 **begin)
        assert started is not None and not started.completed and started.run.attempt == 1
        assert store.host_lease("cell-1:80") == ("wf-1/3/lease", 1, at(60))
        assert [host.state for host in store.hosts("demo-app").values()] == ["deploying"]
