"""The bake's datapoints read from a real Prometheus (Debian's, the `prometheus_servers` fixture)
scraping a prometheus-client exporter the test runs, through a whole execution on the dev server:
the canary waits `insufficient_data` until enough good requests of its own hosts (`$__hosts`),
then passes; the next version's single bad request (`max_negative: 0`) fails its bake and rolls
it back (trigger `datapoints`). Gauges keep the counts exact (`increase()` extrapolates)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from client_helpers import PIPELINE, gate_seen, outcome, register, wait_for
from prometheus_helpers import Exporter, PrometheusServer
from prometheus_helpers import wait_for as wait_until
from temporalio.client import Client
from test_execution_release_gates import commit_v2, gate_events, gated_repo

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.client import EngineClient
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.sources.base import ReadContext
from pipewarden.engine.sources.prometheus import PrometheusSource
from pipewarden.engine.store import EngineStore
from pipewarden.engine.worker import workers
from pipewarden.model.view import PrometheusMetric

BETA = ("127.0.0.1:9301", "127.0.0.1:9302")
GOOD = 'sum(pw_good{host=~"$__hosts"})'
BAD = 'sum(pw_bad{host=~"$__hosts"})'


@asynccontextmanager
async def engine_with_prometheus(server: DevServer, store: EngineStore, state: Path,
                                 url: str) -> AsyncIterator[EngineClient]:
    client = await Client.connect(server.address)
    prefix = f"test-{state.parent.name}-"
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with AsyncExitStack() as stack:
            for worker in workers(client, EngineActivities(store, state, prometheus_url=url), executor=executor,
                                  task_queue_prefix=prefix):
                await stack.enter_async_context(worker)
            yield EngineClient(client, store, queue_prefix=prefix, poll_gates_seconds=1)


def test_a_canary_bakes_on_prometheus_datapoints_and_one_bad_request_rolls_back(
        temporal_server: DevServer, prometheus_servers: Callable[..., PrometheusServer], tmp_path: Path) -> None:
    from prometheus_client import Gauge

    exporter = Exporter()
    try:
        good = Gauge("pw_good", "good requests", ["host"], registry=exporter.registry)
        bad = Gauge("pw_bad", "bad requests", ["host"], registry=exporter.registry)
        for host in BETA:
            good.labels(host).set(1)
            bad.labels(host).set(0)
        good.labels("127.0.0.1:9999").set(100)  # another stage's host: never counted for beta
        prometheus = prometheus_servers(targets=[exporter.target], scrape_interval="1s")
        with PrometheusSource(prometheus.url) as source:
            def scraped(value: float) -> bool:
                reading = source.read(PrometheusMetric(GOOD), ReadContext("beta", BETA, datetime.now(UTC)))
                return reading.value == value

            assert wait_until(lambda: scraped(2), timeout=30), "the first scrape did not come"
            record = tmp_path / "record.txt"
            bake = (f"{{duration: 1s, datapoints: {{positive: {{source: prometheus, query: '{GOOD}'}}, "
                    f"negative: {{source: prometheus, query: '{BAD}'}}, min_positive: 5, max_negative: 0}}}}")
            repo = gated_repo(tmp_path, record, bake=bake)
            state = tmp_path / "state"

            async def scenario(store: EngineStore) -> None:
                async with engine_with_prometheus(temporal_server, store, state, prometheus.url) as engine:
                    register(store, repo)
                    v1 = (await engine.release(PIPELINE, actor="dana")).id
                    await wait_for("insufficient data", gate_seen(store, v1, "datapoints", "insufficient_data"))
                    for host in BETA:
                        good.labels(host).set(3)
                    assert (await outcome(engine, v1)).status == "succeeded"
                    commit_v2(repo)
                    bad.labels(BETA[1]).set(1)
                    await asyncio.to_thread(wait_until, lambda: source.read(
                        PrometheusMetric(BAD), ReadContext("beta", BETA, datetime.now(UTC))).value == 1, timeout=10)
                    v2 = (await engine.release(PIPELINE, actor="dana")).id
                    result = await outcome(engine, v2)
                    assert result.status == "rolled_back", result

            with EngineStore.for_state_dir(state) as store:
                asyncio.run(scenario(store))
                events = store.events(execution="demo-app-1")
                waited = next(e for e in events if e.type == "gate" and e.data["code"] == "insufficient_data")
                assert waited.data["reason"] == "2 positive of 5, 0 negative of at most 0: 3 more positive needed"
                assert "127[.]0[.]0[.]1:9301|127[.]0[.]0[.]1:9302" in waited.data["inputs"]["positive"]["query"]
                assert gate_events(store, "demo-app-1", "datapoints")[-1] == ("pass", "ok")
                assert gate_events(store, "demo-app-2", "datapoints") == [("fail", "negative_datapoints")]
                started = next(e for e in store.events(execution="demo-app-2") if e.type == "rollback_started")
                assert started.data["trigger"] == "datapoints"
                assert store.verify() is None
    finally:
        exporter.stop()
