"""Synthetics (engine.md "Synthetics"): the store's `synthetic_results` (counts per signal and host
set, the newest request, pruning), the counts the datapoints gate reads (`synthetic_reading`:
no data, silent after three intervals), and the runner against real loopback HTTP cells."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from pipewarden.engine.store import EngineStore
from pipewarden.engine.store import store as store_module
from pipewarden.engine.store.records import SyntheticResult
from pipewarden.engine.synthetics import SyntheticsRunner, silent_hosts, synthetic_reading
from pipewarden.model.view import PipelineView, pipeline_view

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)



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


# ---------------------------------------------------------------- real loopback cells


class Cell:
    """A real HTTP server on a free loopback port, in threads: answers `status` after `delay`
    seconds, or with `hang` never (until the cell stops). Records each request's arrival (monotonic
    time, method, path) and the most requests it had in progress at once."""

    def __init__(self, status: int = 200, *, delay: float = 0.0, hang: bool = False) -> None:
        cell = self
        self.status, self.delay, self.hang = status, delay, hang
        self.arrivals: list[tuple[float, str, str]] = []
        self.in_progress = 0
        self.max_in_progress = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                with cell.lock:
                    cell.arrivals.append((time.monotonic(), self.command, self.path))
                    cell.in_progress += 1
                    cell.max_in_progress = max(cell.max_in_progress, cell.in_progress)
                try:
                    if cell.hang:
                        cell.release.wait(30)
                        return
                    if cell.delay:
                        time.sleep(cell.delay)
                    self.send_response(cell.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                finally:
                    with cell.lock:
                        cell.in_progress -= 1

            do_GET = do_POST = do_HEAD = handle_one

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        with self.lock:
            return [path for _, _, path in self.arrivals]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def cells() -> Iterator[Callable[..., Cell]]:
    started: list[Cell] = []

    def make(status: int = 200, **kwargs: Any) -> Cell:
        started.append(Cell(status, **kwargs))
        return started[-1]

    try:
        yield make
    finally:
        for cell in started:
            cell.close()


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def view(stages: dict[str, list[str]], synthetics: list[dict[str, Any]], name: str = "shop") -> PipelineView:
    return pipeline_view({
        "apiVersion": "pipewarden/v1", "kind": "Pipeline", "metadata": {"name": name, "team": "demo"},
        "build": {"commands": ["true"], "artifact": "dist/"}, "synthetics": synthetics,
        "stages": [{"name": stage, "type": "prod" if stage.startswith("prod") else "preprod",
                    "targets": [{"name": f"{stage}-{i}", "hosts": [host]} for i, host in enumerate(hosts)]}
                   for stage, hosts in stages.items()],
    })


def synthetic(name: str = "api", interval: str = "1s", paths: tuple[str, ...] = ("/health",),
              expect: int = 200) -> dict[str, Any]:
    return {"name": name, "interval": interval,
            "requests": [{"method": "GET", "path": path, "expect_status": expect} for path in paths]}


def drive(runner: SyntheticsRunner, seconds: float, during: Callable[[float], None] | None = None, *,
          until: Callable[[], bool] | None = None) -> None:
    """Run `runner` for `seconds` of real time, or with `until` until it holds (failing the test
    after `seconds`); `during(elapsed)` is called every 20 ms."""

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < seconds:
            if during is not None:
                during(elapsed)
            if until is not None and until():
                break
            await asyncio.sleep(0.02)
        else:
            assert until is None, f"not reached within {seconds} s"
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(main())


def rows(store: EngineStore) -> list[Any]:
    from sqlalchemy import select

    from pipewarden.engine.store import tables

    with store.engine.connect() as conn:
        return list(conn.execute(select(tables.synthetic_results).order_by(tables.synthetic_results.c.id)))


def test_each_cell_outcome_is_recorded(store: EngineStore, cells: Callable[..., Cell]) -> None:
    ok, failing, hanging = cells(200), cells(500), cells(hang=True)
    closed = closed_port()
    shop = view({"beta": [ok.host, failing.host], "prod": [hanging.host, closed]}, [synthetic(interval="1m")])
    runner = SyntheticsRunner(store, lambda: [("shop", shop)], timeout_s=0.5)
    drive(runner, 10, until=lambda: runner.stats.stored == 4)   # one round

    stored = rows(store)
    by_host: dict[str, list[Any]] = {}
    for row in stored:
        by_host.setdefault(row.host, []).append(row)
    assert set(by_host) == {ok.host, failing.host, hanging.host, closed}
    assert [(r.stage, r.success, r.status, r.error) for r in by_host[ok.host]] == [("beta", True, 200, None)]
    assert [(r.stage, r.success, r.status, r.error) for r in by_host[failing.host]] == [
        ("beta", False, 500, "status 500, expected 200")]
    assert [(r.stage, r.success, r.status, r.error) for r in by_host[hanging.host]] == [
        ("prod", False, None, "no response within 0.5 s")]
    assert 450 <= by_host[hanging.host][0].duration_ms < 3000
    assert [(r.stage, r.success, r.status, r.error) for r in by_host[closed]] == [
        ("prod", False, None, "cannot connect: connection refused")]
    assert all((r.method, r.path, r.synthetic, r.pipeline) == ("GET", "/health", "api", "shop") for r in stored)
    assert [path for _, _, path in failing.arrivals] == [path for _, _, path in ok.arrivals] == ["/health"]

    since = datetime.now(UTC) - timedelta(days=1)
    beta, prod = [ok.host, failing.host], [hanging.host, closed]
    assert store.synthetic_counts("shop", "api", beta, since, signal="success") == 1
    assert store.synthetic_counts("shop", "api", beta, since, signal="failure") == 1
    assert store.synthetic_counts("shop", "api", prod, since, signal="success") == 0
    assert store.synthetic_counts("shop", "api", prod, since, signal="failure") == 2
    assert store.synthetic_counts("shop", "api", [ok.host], since, signal="failure") == 0
    now = datetime.now(UTC)
    assert synthetic_reading(store, "shop", "api", "success", beta, since, 60, now) == (1, False)
    assert synthetic_reading(store, "shop", "api", "failure", prod, since, 60, now) == (2, False)
    assert runner.stats.stored == runner.stats.requests == 4


def test_interval_kept_without_drift_or_spinning(store: EngineStore, cells: Callable[..., Cell]) -> None:
    # The hanging cell makes each round last 0.7 s: a runner that slept an interval after each
    # round would send at 0, 1.7, 3.4 s; this one keeps 0, 1, 2, 3.
    ok, hanging = cells(200), cells(hang=True)
    shop = view({"prod": [ok.host, hanging.host]}, [synthetic()])
    runner = SyntheticsRunner(store, lambda: [("shop", shop)], timeout_s=0.7)
    drive(runner, 10, until=lambda: len(ok.arrivals) == 4)
    times = [arrived for arrived, _, _ in ok.arrivals]
    offsets = [arrived - times[0] for arrived in times]
    assert all(abs(offset - k) < 0.45 for k, offset in enumerate(offsets)), offsets
    # One request per interval per host, never more; the loop woke for its rounds only.
    assert runner.stats.rounds == 4 and runner.stats.requests == 8
    assert runner.stats.refreshes <= 5
    assert 3 <= len(hanging.arrivals) <= 4


def test_concurrency_is_bounded(store: EngineStore, cells: Callable[..., Cell]) -> None:
    slow = cells(200, delay=0.3)
    shop = view({"prod": [slow.host]}, [synthetic(interval="1m", paths=tuple(f"/p{i}" for i in range(9)))])
    runner = SyntheticsRunner(store, lambda: [("shop", shop)], concurrency=3, timeout_s=5)
    drive(runner, 10, until=lambda: runner.stats.stored == 9)   # three waves of three requests of 0.3 s each
    assert slow.max_in_progress == 3 and runner.stats.max_in_flight == 3
    assert sorted(slow.paths()) == [f"/p{i}" for i in range(9)]
    assert store.synthetic_counts("shop", "api", [slow.host], datetime.now(UTC) - timedelta(days=1), signal="success") == 9


def test_old_results_are_pruned(store: EngineStore) -> None:
    now = datetime.now(UTC)

    def aged(host: str, age: timedelta) -> SyntheticResult:
        return SyntheticResult(pipeline="shop", synthetic="api", stage="prod", host=host, method="GET",
                               path="/health", time=now - age, success=True, status=200, error=None, duration_ms=1)

    store.record_synthetic_results([aged("127.0.0.1:1", timedelta(days=8)), aged("127.0.0.1:2", timedelta(days=6))])
    added_later: list[bool] = []

    runner = SyntheticsRunner(store, list, prune_every_s=0.5)

    def add_one_more(elapsed: float) -> None:
        if runner.stats.pruned == 1 and not added_later:   # after the first pruning: the next one takes it
            store.record_synthetic_results([aged("127.0.0.1:3", timedelta(days=7, seconds=1))])
            added_later.append(True)

    drive(runner, 10, add_one_more, until=lambda: runner.stats.pruned == 2)
    assert [row.host for row in rows(store)] == ["127.0.0.1:2"]   # 7 days by default
    assert runner.stats.pruned == 2


def test_definitions_change_between_rounds(store: EngineStore, cells: Callable[..., Cell],
                                           caplog: pytest.LogCaptureFixture) -> None:
    first, second, third = cells(200), cells(200), cells(200)
    current: dict[str, list[tuple[str, PipelineView]]] = {
        "now": [("shop", view({"prod": [first.host]}, [synthetic(paths=("/v1",))]))]}
    calls = [0]

    def pipelines() -> list[tuple[str, PipelineView]]:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("the store is away")
        return current["now"]

    def change(elapsed: float) -> None:
        if len(first.arrivals) == 2 and "v2" not in current:   # before the round at 2 s: a host and a path more
            current["v2"] = []
            current["now"] = [("shop", view({"prod": [first.host], "prod-2": [second.host]},
                                            [synthetic(paths=("/v2",))]))]
        if "/v2" in first.paths() and "gone" not in current:  # the synthetic removed, another pipeline's added
            current["gone"] = []
            current["now"] = [("shop", view({"prod": [first.host]}, [])),
                              ("cart", view({"beta": [third.host]}, [synthetic("cart-api", "2s")], name="cart"))]

    runner = SyntheticsRunner(store, pipelines)
    with caplog.at_level(logging.ERROR, logger="pipewarden.engine.synthetics"):
        drive(runner, 10, change, until=lambda: runner.stats.stored == 5)
    # Round 2 (at 1 s) could not read the definitions: it ran them as last read, and logged why.
    assert "reading the pipelines' synthetics failed" in caplog.text and "the store is away" in caplog.text
    assert first.paths() == ["/v1", "/v1", "/v2"]
    assert second.paths() == ["/v2"]
    assert third.paths() == ["/health"]   # new at the round of 3 s: sent at once
    assert store.synthetic_counts("cart", "cart-api", [third.host], datetime.now(UTC) - timedelta(days=1), signal="success") == 1


def test_results_that_cannot_be_stored_are_kept_for_the_next_write(
        store: EngineStore, cells: Callable[..., Cell], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    ok = cells(200)
    record = store.record_synthetic_results
    failures = [RuntimeError("database is locked")]

    def flaky(batch: Sequence[SyntheticResult]) -> None:
        if failures:
            raise failures.pop()
        record(batch)

    monkeypatch.setattr(store, "record_synthetic_results", flaky)
    shop = view({"prod": [ok.host]}, [synthetic()])
    runner = SyntheticsRunner(store, lambda: [("shop", shop)])
    with caplog.at_level(logging.ERROR, logger="pipewarden.engine.synthetics"):
        drive(runner, 10, until=lambda: runner.stats.stored >= 2)
    assert "storing 1 synthetic results failed" in caplog.text
    assert len(rows(store)) == runner.stats.stored == len(ok.arrivals) >= 2


# ---------------------------------------------------------------- in the server


PIPELINE = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: shop, team: demo}
build:
  commands: ["mkdir -p dist && echo v1 > dist/app.txt"]
  artifact: dist/
synthetics:
  - name: api
    interval: 1s
    requests:
      - {method: GET, path: /health, expect_status: 200}
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-1, hosts: ["OK_HOST"]}]
  - name: prod
    type: prod
    targets: [{name: prod-1, hosts: ["FAILING_HOST"]}]
"""


def test_the_server_runs_the_synthetics_of_its_pipelines(tmp_path: Path, cells: Callable[..., Cell]) -> None:
    from server_helpers import ServerProcess
    from workflow_helpers import git, write

    from pipewarden.engine.devserver import DevServerError, temporal_binary

    try:
        temporal_binary()
    except DevServerError as error:
        pytest.skip(f"NO TEMPORAL DEV SERVER: {error}")
    ok, failing = cells(200), cells(503)
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test Dev")
    git(repo, "config", "user.email", "dev@example.com")
    write(repo / "pipeline.yaml", PIPELINE.replace("OK_HOST", ok.host).replace("FAILING_HOST", failing.host))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    config = tmp_path / "engine.yaml"
    config.write_text(f"apiVersion: pipewarden/v1\nkind: EngineConfig\npoll: {{git: 1s, gates: 1s}}\n"
                      f"pipelines:\n  - repo: {repo}\n")
    state = tmp_path / "state"
    since = datetime.now(UTC) - timedelta(minutes=1)
    with ServerProcess(state, "--config", str(config)) as server:
        with EngineStore.for_state_dir(state) as engine_store:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                good = engine_store.synthetic_counts("shop", "api", [ok.host], since, signal="success")
                bad = engine_store.synthetic_counts("shop", "api", [failing.host], since, signal="failure")
                if good >= 3 and bad >= 3:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"no synthetic results ({good}, {bad}):\n{server.output()[-3000:]}")
            assert engine_store.synthetic_counts("shop", "api", [ok.host, failing.host], since, signal="success") \
                == good
            times = [arrived for arrived, _, _ in ok.arrivals]
            assert all(0.5 < later - earlier < 1.5 for earlier, later in pairwise(times)), times
            assert server.stop() == 0
        sent = len(ok.arrivals)
        time.sleep(1.5)
        assert len(ok.arrivals) == sent   # stopped with the server
