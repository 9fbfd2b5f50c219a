"""One hook per host across workers: the store's host leases."""

from __future__ import annotations

from pathlib import Path

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
