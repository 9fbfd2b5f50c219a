"""Metric sources (engine/sources/, engine.md "Metric references") against real components:
Debian's Prometheus serving an exact TSDB built with promtool (and one scraping a
prometheus-client exporter), real shell commands, the engine store's synthetic results.

Every Prometheus answer a gate can meet is read here: one sample, an empty result (no data),
several series, NaN, a range vector, a bad query (HTTP 400), a server that is down, one that
does not answer (timeout) and one that answers something that is not JSON. `$__hosts` is checked
with Prometheus itself: over hosts full of regex metacharacters, quotes and backslashes, the
expression matches exactly the hosts given (a sum of distinct powers of two shows which).
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_helpers import Exporter, PrometheusServer, build_tsdb, openmetrics, wait_for

from pipewarden.engine.devserver import free_port
from pipewarden.engine.domain.ids import format_time
from pipewarden.engine.sources.base import NO_PROMETHEUS, MetricSources, ReadContext, Reading
from pipewarden.engine.sources.command import CommandSource, parse_output
from pipewarden.engine.sources.prometheus import PrometheusSource, expand, hosts_regex
from pipewarden.engine.sources.synthetic import SyntheticSource
from pipewarden.engine.store import EngineStore
from pipewarden.engine.store.records import SyntheticResult
from pipewarden.engine.synthetics import synthetic_reading
from pipewarden.model.view import CommandMetric, PrometheusMetric, SyntheticMetric

T = 1_700_000_000  # the TSDB's "now": every instant series has a sample at T - 10
NOW = datetime.fromtimestamp(T, UTC)

# Hosts of every awkward kind; index i carries the value 2**i in pw_hosts, so the sum of a query
# tells exactly which matched. No two are equal case-insensitively.
HOSTS: tuple[str, ...] = (
    "127.0.0.1:9301", "127.0.0.1:9302", "127x0x0x1:9301", "127.0.0.1:93010", "27.0.0.1:9301",
    "[::1]:9301", "[::1]:93011", "a*b:1", "aab:1", "a+b:1", "a?b:1", "(x):1", "x|y:1", "x:1", "y:1",
    "{1}:1", "^a$:1", 'q"uote:1', "back\\slash:1", "Cell-1.Shop.Internal:80", "é.host:1", "tab]x:1",
    "per%cent:1", "ctrl\x01:1", "b.c:1", "bxc:1", "a\\d:1", "ad:1",
)


def context(**changes: object) -> ReadContext:
    base: dict[str, object] = {"stage": "prod-canary", "hosts": ("127.0.0.1:9301",), "now": NOW,
                               "deploy_finished": NOW - timedelta(seconds=95.2)}
    base.update(changes)
    return ReadContext(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tsdb(prometheus_servers: Callable[..., PrometheusServer],
         tmp_path_factory: pytest.TempPathFactory) -> PrometheusServer:
    samples: list[tuple[str, dict[str, str], float, float]] = []
    at = T - 10
    samples += [("pw_hosts", {"instance": host}, float(2**i), at) for i, host in enumerate(HOSTS)]
    samples += [("pw_single", {"job": "a"}, 42.0, at),
                ("pw_multi", {"job": "a"}, 1.0, at), ("pw_multi", {"job": "b"}, 2.0, at),
                ("pw_nan", {"job": "a"}, math.nan, at),
                ("pw_stage", {"stage": "prod-canary"}, 7.0, at), ("pw_stage", {"stage": "beta"}, 3.0, at)]
    # One sample every 10 s for ten minutes up to T: count_over_time over [Ns] counts exactly the
    # samples of (T - N, T].
    samples += [("pw_tick", {"job": "a"}, 1.0, float(T - 10 * k)) for k in range(60)]
    storage = tmp_path_factory.mktemp("tsdb") / "data"
    build_tsdb(openmetrics(samples), storage)
    return prometheus_servers(storage=storage)


@pytest.fixture(scope="module")
def source(tsdb: PrometheusServer) -> Iterator[PrometheusSource]:
    with PrometheusSource(tsdb.url, timeout_seconds=10) as opened:
        yield opened


def read(source: PrometheusSource, query: str, **changes: object) -> Reading:
    return source.read(PrometheusMetric(query), context(**changes))


# ---------------------------------------------------------------- answers


def test_one_sample_is_the_value(source: PrometheusSource) -> None:
    reading = read(source, 'sum(pw_single{job="a"})')
    assert (reading.value, reading.error, reading.source) == (42.0, None, "prometheus")
    assert reading.query == 'sum(pw_single{job="a"})' and reading.observed == NOW
    observation = reading.observation()
    assert observation.to_json()["value"] == 42.0 and observation.to_json()["observed"] == format_time(NOW)
    assert read(source, "1 + 1").value == 2.0  # a scalar is one sample too


def test_empty_result_is_no_data(source: PrometheusSource) -> None:
    reading = read(source, 'sum(pw_single{job="nobody"})')
    assert reading.no_data and reading.observation().no_data


def test_several_series_nan_and_range_vectors_are_errors(source: PrometheusSource) -> None:
    several = read(source, "pw_multi")
    assert several.value is None and several.error is not None
    assert "2 series" in several.error and 'job="a"' in several.error and "sum(" in several.error
    nan = read(source, "sum(pw_nan)")
    assert nan.value is None and "NaN" in (nan.error or "")
    infinite = read(source, "sum(pw_single) / 0")
    assert infinite.value is None and "Inf" in (infinite.error or "")
    matrix = read(source, "pw_single[5m]")
    assert "range vector" in (matrix.error or "")


def test_bad_query_is_http_400_with_prometheus_reason(source: PrometheusSource) -> None:
    reading = read(source, "sum(pw_single")
    assert reading.error is not None and "HTTP 400 (bad_data)" in reading.error and "parse error" in reading.error
    unknown = read(source, "sum(pw_single[$__nothing])")
    assert unknown.error is not None and "HTTP 400" in unknown.error and "$__nothing" in unknown.query


def test_since_deploy_is_whole_seconds_rounded_up(source: PrometheusSource) -> None:
    # 95.2 s since the deploy: [96s] holds the samples at T-90 ... T, ten of them.
    reading = read(source, "sum(count_over_time(pw_tick[$__since_deploy]))")
    assert reading.query == "sum(count_over_time(pw_tick[96s]))" and reading.value == 10.0
    # An alarm's window is the poll.gates interval, deployed or not.
    # (35 s, not 30: Prometheus 2 includes a sample exactly at the range's start, 3 does not.)
    alarm = read(source, "sum(count_over_time(pw_tick[$__since_deploy]))", alarm=True, poll_seconds=35,
                 deploy_finished=None)
    assert alarm.query == "sum(count_over_time(pw_tick[35s]))" and alarm.value == 4.0
    # Before the deploy finished, a datapoints query has no window: an error, never a guess.
    early = read(source, "sum(count_over_time(pw_tick[$__since_deploy]))", deploy_finished=None)
    assert early.value is None and "has not finished" in (early.error or "")


def test_stage_placeholder(source: PrometheusSource) -> None:
    assert read(source, 'sum(pw_stage{stage="$__stage"})').value == 7.0
    assert read(source, 'sum(pw_stage{stage="$__stage"})', stage="beta").value == 3.0


# ---------------------------------------------------------------- $__hosts, checked by Prometheus


def matched(source: PrometheusSource, hosts: tuple[str, ...]) -> set[int]:
    reading = read(source, 'sum(pw_hosts{instance=~"$__hosts"})', hosts=hosts)
    assert reading.error is None, (reading.error, reading.query)
    total = 0 if reading.value is None else int(reading.value)
    return {i for i in range(len(HOSTS)) if total >> i & 1}


def test_hosts_regex_matches_each_awkward_host_alone(source: PrometheusSource) -> None:
    for i, host in enumerate(HOSTS):
        assert matched(source, (host,)) == {i}, (host, hosts_regex([host]))


def test_hosts_regex_spelling() -> None:
    assert hosts_regex(["127.0.0.1:9301", "127.0.0.1:9302"]) == "127[.]0[.]0[.]1:9301|127[.]0[.]0[.]1:9302"
    assert hosts_regex(["[::1]:9301"]) == "[[]::1[]]:9301"
    assert hosts_regex(["Cell-1.shop:80", "cell-1.SHOP:80"]) == "(?i:Cell-1[.]shop:80)"
    # Safe inside a double-quoted PromQL string: no bare quote, every backslash escaped in pairs.
    written = hosts_regex(list(HOSTS))
    assert '"' not in written.replace('\\"', "") and "\\\\" in written


def test_hosts_compare_case_insensitively(source: PrometheusSource) -> None:
    index = HOSTS.index("Cell-1.Shop.Internal:80")
    assert matched(source, ("cell-1.shop.internal:80",)) == {index}
    assert matched(source, ("CELL-1.SHOP.INTERNAL:80",)) == {index}


def test_no_hosts_match_nothing(source: PrometheusSource) -> None:
    assert matched(source, ()) == set()
    assert read(source, 'sum(pw_hosts{instance=~"$__hosts"})', hosts=()).no_data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, len(HOSTS) - 1), max_size=8), st.booleans())
def test_hosts_regex_matches_exactly_the_hosts_given(source: PrometheusSource, chosen: list[int],
                                                     swap: bool) -> None:
    hosts = tuple(HOSTS[i].swapcase() if swap else HOSTS[i] for i in chosen)
    assert matched(source, hosts) == set(chosen)


# ---------------------------------------------------------------- a server down, silent, or not Prometheus


class _Answer(BaseHTTPRequestHandler):
    body = b"hello"
    status = 200
    content_type = "text/plain"

    def do_POST(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Callable[[int, bytes, str], str]]:
    """`serve(status, body, content_type) -> url`: a loopback HTTP server answering that."""
    servers: list[ThreadingHTTPServer] = []
    threads: list[threading.Thread] = []

    def serve(status: int, body: bytes, content_type: str) -> str:
        handler = type("Handler", (_Answer,), {"status": status, "body": body, "content_type": content_type})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)


def test_server_down_is_an_error_naming_it() -> None:
    port = free_port()
    with PrometheusSource(f"http://user:secret@127.0.0.1:{port}") as down:
        reading = read(down, "sum(pw_single)")
    assert reading.value is None and reading.error is not None
    assert f"cannot connect to Prometheus at http://127.0.0.1:{port}" in reading.error
    assert "secret" not in reading.error
    for url in ("127.0.0.1:9090", "http://[bad", "ftp://127.0.0.1:9090"):  # the config checks URLs; still no crash
        with PrometheusSource(url) as odd:
            assert read(odd, "sum(pw_single)").error


def test_timeout_is_an_error_and_quick() -> None:
    # A listener that accepts connections and never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with PrometheusSource(f"http://127.0.0.1:{port}", timeout_seconds=0.5) as silent:
            started = datetime.now(UTC)
            reading = read(silent, "sum(pw_single)")
            elapsed = (datetime.now(UTC) - started).total_seconds()
    assert reading.value is None and "did not answer within 0.5s" in (reading.error or "")
    assert elapsed < 5


def test_answers_that_are_not_prometheus_json(answering: Callable[[int, bytes, str], str]) -> None:
    with PrometheusSource(answering(200, b"<html>hello</html>", "text/html")) as proxy:
        reading = read(proxy, "sum(pw_single)")
    assert "not JSON" in (reading.error or "") and "hello" in (reading.error or "")
    with PrometheusSource(answering(502, b"", "text/plain")) as gateway:
        assert "HTTP 502" in (read(gateway, "sum(pw_single)").error or "")
    with PrometheusSource(answering(200, b'{"status": "success", "data": {"resultType": "vector", '
                                         b'"result": [{"metric": {}, "value": [1, "x"]}]}}',
                                    "application/json")) as odd:
        assert "not a number" in (read(odd, "sum(pw_single)").error or "")
    with PrometheusSource(answering(503, b'{"status": "error", "errorType": "timeout", "error": "query timed out"}',
                                    "application/json")) as busy:
        assert read(busy, "sum(pw_single)").error == "Prometheus answered HTTP 503 (timeout): query timed out"


def test_no_prometheus_configured_is_a_source_error() -> None:
    reading = MetricSources().read(PrometheusMetric("sum(up)"), context())
    assert reading.error == NO_PROMETHEUS and reading.query == "sum(up)"
    assert reading.observation().code == "source_error"


def test_expand_fills_every_placeholder_once() -> None:
    filled = expand('x{stage="$__stage", instance=~"$__hosts"}[$__since_deploy] $__since_deployed',
                    context(stage='odd"stage', hosts=("10.0.0.1:80",), deploy_finished=NOW - timedelta(seconds=317)))
    assert filled == 'x{stage="odd\\"stage", instance=~"10[.]0[.]0[.]1:80"}[317s] $__since_deployed'
    assert expand("[$__since_deploy]", context(deploy_finished=NOW)) == "[1s]"  # at least 1s
    assert expand("[$__since_deploy]", context(deploy_finished=NOW - timedelta(milliseconds=1))) == "[1s]"
    assert expand("[$__since_deploy]", context(deploy_finished=NOW - timedelta(seconds=60, microseconds=1))) == "[61s]"
    assert expand("[$__since_deploy]", context(deploy_finished=NOW + timedelta(seconds=5))) == "[1s]"


# ---------------------------------------------------------------- a real scrape


def test_scraped_exporter_through_hosts(prometheus_servers: Callable[..., PrometheusServer]) -> None:
    from prometheus_client import Gauge

    exporter = Exporter()
    try:
        Gauge("pw_demo_value", "a value for the test", registry=exporter.registry).set(42)
        server = prometheus_servers(targets=[exporter.target], scrape_interval="1s")
        with PrometheusSource(server.url) as live:
            def scraped() -> Reading | None:
                reading = live.read(PrometheusMetric('sum(pw_demo_value{instance=~"$__hosts"})'),
                                    context(hosts=(exporter.target,), now=datetime.now(UTC)))
                return reading if reading.value is not None else None

            # The scrape manager applies its targets on a 5 s tick: the first sample takes ~6 s.
            reading = wait_for(scraped, timeout=30)
            assert reading is not None and reading.value == 42.0
            other = live.read(PrometheusMetric('sum(pw_demo_value{instance=~"$__hosts"})'),
                              context(hosts=("127.0.0.1:1",), now=datetime.now(UTC)))
            assert other.no_data
    finally:
        exporter.stop()


# ---------------------------------------------------------------- command


def command(text: str, timeout: float = 10.0, **changes: object) -> Reading:
    return CommandSource(timeout_seconds=timeout).read(CommandMetric(text), context(**changes))


def test_command_prints_one_number() -> None:
    assert command("echo 42").value == 42.0
    assert command("printf '  3.5 \\n\\n'").value == 3.5
    assert command("echo -1e3").value == -1000.0
    reading = command("echo 7")
    assert reading.query == "echo 7" and reading.source == "command" and reading.observed == NOW


def test_command_empty_output_is_no_data() -> None:
    assert command("true").no_data
    assert command("echo").no_data


@pytest.mark.parametrize("output", ["abc", "1 2", "1\n2", "nan", "inf", "1e999", "0x10", "1_000", "--1"])
def test_command_other_output_is_an_error(output: str) -> None:
    value, error = parse_output(output)
    assert value is None and error is not None and "not" in error


def test_command_failure_and_timeout(tmp_path: Path) -> None:
    failed = command("echo boom >&2; exit 3")
    assert failed.value is None and failed.error == "the command exited 3: boom"
    pidfile = tmp_path / "child.pid"
    started = datetime.now(UTC)
    slow = command(f"sleep 30 & echo $! > {pidfile}; sleep 30", timeout=0.5)
    assert slow.value is None and "did not finish within 0.5s" in (slow.error or "")
    assert (datetime.now(UTC) - started).total_seconds() < 5
    assert wait_for(lambda: not _alive(int(pidfile.read_text())), timeout=5)  # its whole process group is gone


def test_command_leaves_nothing_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = datetime.now(UTC)
    reading = command(f"sleep 30 & echo $! > {pidfile}; echo 5")
    assert reading.value == 5.0 and (datetime.now(UTC) - started).total_seconds() < 5
    assert wait_for(lambda: not _alive(int(pidfile.read_text())), timeout=5)


def test_command_environment_and_directory(tmp_path: Path) -> None:
    (tmp_path / "count.txt").write_text("17\n")
    assert command("cat count.txt", cwd=tmp_path).value == 17.0
    finished = NOW - timedelta(seconds=95.2)
    assert command("echo $PIPEWARDEN_SINCE").value == math.floor(finished.timestamp())
    assert command("echo $PIPEWARDEN_SINCE", alarm=True, poll_seconds=30).value == T - 30
    env = {"PATH": "/usr/bin:/bin", "PIPEWARDEN_PIPELINE": "shop", "COUNT": "9"}
    assert command("echo $COUNT", env=env).value == 9.0
    assert command('test "$PIPEWARDEN_STAGE $PIPEWARDEN_HOSTS" = "prod-canary 127.0.0.1:9301 x:1" && echo 1',
                   env=env, hosts=("127.0.0.1:9301", "x:1")).value == 1.0
    assert command("echo ${PIPEWARDEN_SINCE:-unset}", deploy_finished=None).error is not None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


# ---------------------------------------------------------------- synthetic


def _result(host: str, when: datetime, success: bool) -> SyntheticResult:
    return SyntheticResult(pipeline="shop", synthetic="api", stage="prod-canary", host=host, method="GET",
                           path="/health", time=when, success=success, status=200 if success else 500,
                           error=None if success else "status 500", duration_ms=2)


def test_synthetic_counts_from_the_store(tmp_path: Path) -> None:
    hosts = ("127.0.0.1:9301", "127.0.0.1:9302")
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        source = SyntheticSource(partial(synthetic_reading, store))
        ctx = context(pipeline="shop", hosts=hosts, synthetic_intervals={"api": 10},
                      deploy_finished=NOW - timedelta(seconds=60))
        success, failure = SyntheticMetric("api", "success"), SyntheticMetric("api", "failure")
        # Nothing recorded at all: silent (the runner never reached the hosts).
        silent = source.read(success, ctx)
        assert silent.silent and silent.observation().code == "synthetic_silent" and "api" in (silent.error or "")
        store.record_synthetic_results([_result(host, NOW - timedelta(seconds=s), s != 15)
                                        for host in hosts for s in (90, 25, 15, 5)])
        assert source.read(success, ctx).value == 4.0  # 25 and 5 s ago, on both hosts
        assert source.read(failure, ctx).value == 2.0
        assert source.read(success, ctx).query == "api success"
        # Another pipeline's synthetic of the same name counts nothing: no data.
        other = source.read(success, context(pipeline="web", hosts=hosts, synthetic_intervals={"api": 10},
                                              deploy_finished=NOW - timedelta(seconds=60)))
        assert other.silent  # nothing of web's api ever reached the hosts


def test_synthetic_store_failure_is_a_source_error() -> None:
    def broken(*args: object) -> object:
        raise OSError("database is locked")

    reading = SyntheticSource(broken).read(SyntheticMetric("api", "success"), context())  # type: ignore[arg-type]
    assert reading.error == "the synthetics store failed: OSError: database is locked" and not reading.silent


def test_sources_dispatch_by_reference(source: PrometheusSource) -> None:
    sources = MetricSources(prometheus=source, command=CommandSource())
    assert sources.read(PrometheusMetric("sum(pw_single)"), context()).value == 42.0
    assert sources.read(CommandMetric("echo 3"), context()).value == 3.0
    missing = sources.read(SyntheticMetric("api", "success"), context())
    assert missing.error == "no synthetic source is configured" and missing.query == "api success"
