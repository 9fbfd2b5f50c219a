"""Synthetics (engine.md "Synthetics"): the store's `synthetic_results` (counts per signal and host
set, the newest request, pruning), the counts the datapoints gate reads (`synthetic_reading`:
no data, silent after three intervals), and the runner against real loopback HTTP cells."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipewarden.engine.store import EngineStore
from pipewarden.engine.store import store as store_module
from pipewarden.engine.store.records import SyntheticResult
from pipewarden.engine.synthetics import silent_hosts, synthetic_reading

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EngineStore]:
    with EngineStore.for_state_dir(tmp_path / "state") as opened:
        yield opened


def result(host: str, seconds: float, success: bool, *, pipeline: str = "shop", synthetic: str = "api",
           stage: str = "prod") -> SyntheticResult:
    return SyntheticResult(pipeline=pipeline, synthetic=synthetic, stage=stage, host=host, method="GET",
                           path="/health", time=at(seconds), success=success, status=200 if success else 500,
                           error=None if success else "status 500, expected 200", duration_ms=3)


# ---------------------------------------------------------------- the store


def test_counts_per_signal_host_set_and_since(store: EngineStore) -> None:
    store.record_synthetic_results([
        result("Cell-1.Shop.Internal:80", 0, True), result("cell-1.shop.internal:80", 10, True),
        result("cell-1.shop.internal:80", 20, False), result("127.0.0.1:9301", 10, True),
        result("127.0.0.1:9301", 30, False), result("127.0.0.1:9301", 40, False),
        # Another synthetic, another pipeline: never counted with these.
        result("127.0.0.1:9301", 30, False, synthetic="other"),
        result("127.0.0.1:9301", 30, False, pipeline="else"),
    ])
    both = ["cell-1.shop.internal.:0080", "127.0.0.1:9301"]
    assert store.synthetic_counts("shop", "api", both, at(0), signal="success") == 3
    assert store.synthetic_counts("shop", "api", both, at(0), signal="failure") == 3
    # Hosts compare by host_key: case, a trailing dot and leading zeros of the port do not matter.
    assert store.synthetic_counts("shop", "api", ["CELL-1.shop.internal:80"], at(0), signal="success") == 2
    assert store.synthetic_counts("shop", "api", ["127.0.0.1:9301"], at(0), signal="failure") == 2
    # `since` is inclusive (a request sent as the deploy finished counts).
    assert store.synthetic_counts("shop", "api", both, at(10), signal="success") == 2
    assert store.synthetic_counts("shop", "api", both, at(10.001), signal="success") == 0
    assert store.synthetic_counts("shop", "api", [], at(0), signal="success") == 0
    assert store.synthetic_counts("shop", "api", ["127.0.0.2:9301"], at(0), signal="failure") == 0
    with pytest.raises(ValueError, match="signal"):
        store.synthetic_counts("shop", "api", both, at(0), signal="positive")


def test_last_seen_is_the_newest_request_of_any_outcome(store: EngineStore) -> None:
    assert store.synthetic_last_seen("shop", "api", ["127.0.0.1:9301"]) is None
    store.record_synthetic_results([
        result("127.0.0.1:9301", 5, True), result("127.0.0.1:9301", 25, False), result("127.0.0.1:9302", 40, True),
        result("127.0.0.1:9301", 99, True, synthetic="other"),
    ])
    assert store.synthetic_last_seen("shop", "api", ["127.0.0.1:9301"]) == at(25)
    assert store.synthetic_last_seen("shop", "api", ["127.0.0.1:9301", "127.0.0.1:09302"]) == at(40)
    assert store.synthetic_last_seen("shop", "api", []) is None
    assert store.synthetic_last_seen("shop", "nope", ["127.0.0.1:9301"]) is None


def test_prune_deletes_before_the_cutoff_in_batches(store: EngineStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PRUNE_BATCH", 4)
    store.record_synthetic_results([result("127.0.0.1:9301", i, i % 2 == 0) for i in range(11)])
    assert store.prune_synthetic_results(at(9)) == 9   # three batches: 4, 4, 1
    assert store.synthetic_counts("shop", "api", ["127.0.0.1:9301"], T0, signal="success") == 1  # 10
    assert store.synthetic_counts("shop", "api", ["127.0.0.1:9301"], T0, signal="failure") == 1  # 9
    assert store.prune_synthetic_results(at(9)) == 0


def test_stored_fields_read_back(store: EngineStore) -> None:
    from sqlalchemy import select

    from pipewarden.engine.store import tables

    store.record_synthetic_results([SyntheticResult(
        pipeline="shop", synthetic="api", stage="prod", host="Cell-1:80", method="POST", path="/orders",
        time=at(1.5), success=False, status=None, error="cannot connect: refused", duration_ms=12)])
    with store.engine.connect() as conn:
        row = conn.execute(select(tables.synthetic_results)).one()
    assert (row.host, row.host_key, row.time, row.success, row.status, row.error, row.duration_ms) == (
        "Cell-1:80", "cell-1:80", "2026-12-01T15:00:01.500Z", False, None, "cannot connect: refused", 12)


# ---------------------------------------------------------------- what the datapoints gate reads


def test_reading_counts_since_the_deploy_and_no_data_is_none(store: EngineStore) -> None:
    hosts = ["127.0.0.1:9301", "127.0.0.1:9302"]
    now = at(100)
    # Nothing at all: no data, and silent.
    assert synthetic_reading(store, "shop", "api", "success", hosts, at(50), 10, now) == (None, True)
    store.record_synthetic_results([result(h, s, True) for h in hosts for s in (40, 70, 80, 90)])
    # Healthy: three successes each since the deploy (at 50), the failure count 0 (not None: data).
    assert synthetic_reading(store, "shop", "api", "success", hosts, at(50), 10, now) == (6, False)
    assert synthetic_reading(store, "shop", "api", "failure", hosts, at(50), 10, now) == (0, False)
    # Nothing since the deploy yet: no data for either signal.
    assert synthetic_reading(store, "shop", "api", "failure", hosts, at(95), 10, now) == (None, False)
    store.record_synthetic_results([result("127.0.0.1:9302", 95, False)])
    assert synthetic_reading(store, "shop", "api", "failure", hosts, at(50), 10, now) == (1, False)
    assert synthetic_reading(store, "shop", "api", "success", hosts, at(95), 10, now) == (0, False)


def test_silent_after_three_intervals_per_host(store: EngineStore) -> None:
    hosts = ["127.0.0.1:9301", "127.0.0.1:9302"]
    store.record_synthetic_results([result("127.0.0.1:9301", 70, True), result("127.0.0.1:9302", 75, False)])
    # Interval 10 s: the newest requests (70, 75) are within three intervals of 99.
    assert silent_hosts(store, "shop", "api", hosts, 10, at(99)) == []
    # At 100 the host last reached at 70 has been silent for three intervals; the other not yet.
    assert silent_hosts(store, "shop", "api", hosts, 10, at(100)) == ["127.0.0.1:9301"]
    assert synthetic_reading(store, "shop", "api", "success", hosts, at(60), 10, at(100)) == (1, True)
    assert silent_hosts(store, "shop", "api", hosts, 10, at(105)) == hosts
    # A longer interval: not silent; a synthetic without an interval never runs: silent.
    assert silent_hosts(store, "shop", "api", hosts, 60, at(105)) == []
    assert silent_hosts(store, "shop", "api", hosts, None, at(71)) == hosts
    # A host of the stage that no request ever reached.
    assert silent_hosts(store, "shop", "api", [*hosts, "127.0.0.1:9303"], 60, at(80)) == ["127.0.0.1:9303"]
