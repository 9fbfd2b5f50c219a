"""The synthetics runner (engine.md "Synthetics") and the synthetic counts of the datapoints gate.

While the server runs, `SyntheticsRunner.run` sends each request of each synthetic of each pipeline
every `interval` to every host of every stage's targets (`http://HOST:PORT/PATH`) and stores one
`SyntheticResult` per request: a success when the response's status is the request's
`expect_status` within the timeout (10 s), else a failure (another status, a timeout, a refused
connection, any other error). `source: synthetic` datapoints count them
(`EngineStore.synthetic_counts`, `synthetic_reading`).

How it runs, and why:

- **One event loop, one client.** All requests go through one `httpx.AsyncClient` and a semaphore
  of `concurrency` (32): many cells cost coroutines, not threads. Each request opens its own
  connection (no keep-alive): a cell restarted by a deploy never fails a probe through a stale
  pooled connection, and each probe exercises what a client would. Only the status line and
  headers are awaited; the body is never read. The whole request, connection included, is bounded
  by `timeout_s`, counted from when it got its turn at the semaphore.
- **Drift-free schedule, never a tight loop.** Each synthetic (per pipeline, name and interval)
  has a due time on the loop's monotonic clock; after each round it moves by whole intervals
  (`due += k * interval`), so rounds stay on the grid the first round set, and missed slots (a
  stalled loop) are skipped, not caught up in a burst. Between rounds the runner sleeps until the
  next due time (or the next re-read of definitions, or `stop`). Intervals below 1 s are run at
  1 s; a synthetic without an `interval` (the format gives no default) or without requests sends
  nothing (and so is silent).
- **Rounds never pile up.** A synthetic's round still running at its next due time (a backlog
  behind the semaphore) makes that slot skipped, with one warning until it catches up: the queue
  of requests is bounded by one round per synthetic.
- **Failures stay local.** A request's error is its result; an exception in a round (reading the
  definitions, a store write) is logged and the runner goes on; results that could not be stored
  are kept (up to MAX_PENDING) for the next write.
- **Definitions are re-read each round** (synthetics due at the same moment share one read) and
  at least every `refresh_s`: the store's newest valid definitions (`StoredPipelines`), so a new
  commit's synthetics, hosts and paths apply at the next round; a new synthetic (or a changed
  interval) starts at once.
- **Results are written in batches** by one writer task (one transaction for whatever rounds
  finished meanwhile), and pruned every `prune_every_s` (an hour) to `retention` (7 days).

A host listed by two stages of one pipeline is sent each request once (recorded with the first
stage), so that counts by host count each request once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx

from pipewarden.engine.store import EngineStore
from pipewarden.engine.store.records import SyntheticResult
from pipewarden.model.hosts import host_key
from pipewarden.model.view import PipelineView, SyntheticRequest, SyntheticView, pipeline_view

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONCURRENCY = 32
DEFAULT_RETENTION = timedelta(days=7)
PRUNE_EVERY_S = 3600.0
REFRESH_S = 10.0
"""Definitions are re-read at least this often, even when no synthetic is due."""
MIN_INTERVAL_S = 1.0
SILENT_INTERVALS = 3
"""engine.md: a synthetic that reached none of a stage's hosts for this many intervals is silent."""
MAX_PENDING = 100_000
"""Results kept for a later write while the store cannot take them; the oldest go beyond this."""

Clock = Callable[[], datetime]
PipelinesFn = Callable[[], Sequence[tuple[str, PipelineView]]]
"""The pipelines whose synthetics run: (pipeline name, view of its newest valid definition)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- what to send


@dataclass(frozen=True, slots=True)
class Probe:
    """One request of a synthetic to one host of one stage."""

    stage: str
    host: str
    request: SyntheticRequest

    @property
    def url(self) -> str:
        """`http://HOST:PORT/PATH` with the host as written (`[::1]:80` stays bracketed)."""
        path = self.request.path
        return f"http://{self.host}{path if path.startswith('/') else '/' + path}"


def probes_of(view: PipelineView, synthetic: SyntheticView) -> tuple[Probe, ...]:
    """Every request of `synthetic` to every host of every stage's targets, stage by stage in the
    order written; a host (by `host_key`) listed again by a later stage is not probed twice."""
    seen: set[str] = set()
    probes: list[Probe] = []
    for stage in view.stages:
        for host in stage.hosts:
            key = host_key(host)
            if key in seen:
                continue
            seen.add(key)
            probes.extend(Probe(stage.name, host, request) for request in synthetic.requests)
    return tuple(probes)


class StoredPipelines:
    """A `PipelinesFn`: the store's newest valid definitions (what the poller read), limited to
    `names` when given (the pipelines the engine's config releases now). A definition is turned
    into a view once and reused while it is unchanged."""

    def __init__(self, store: EngineStore, names: Collection[str] | None = None) -> None:
        self.store = store
        self.names = None if names is None else frozenset(names)
        self._views: dict[str, tuple[dict[str, Any], PipelineView | None]] = {}

    def __call__(self) -> list[tuple[str, PipelineView]]:
        out = []
        for record in self.store.pipelines():
            if record.definition is None or (self.names is not None and record.name not in self.names):
                continue
            cached = self._views.get(record.name)
            if cached is None or cached[0] != record.definition:
                try:
                    view: PipelineView | None = pipeline_view(record.definition)
                except ValueError as error:  # the poller stores valid definitions only; said once
                    log.warning("synthetics of pipeline %s not run: its stored definition cannot be read (%s)",
                                record.name, error)
                    view = None
                cached = (record.definition, view)
                self._views[record.name] = cached
            if cached[1] is not None:
                out.append((record.name, cached[1]))
        return out


# ---------------------------------------------------------------- the runner


@dataclass
class _Schedule:
    pipeline: str
    synthetic: str
    interval_s: float
    probes: tuple[Probe, ...]
    due: float
    """The next round's time on the event loop's clock."""
    task: asyncio.Task[None] | None = None
    overrun: bool = False
    """A slot was skipped because the previous round was still running (warned once)."""


@dataclass
class _Stats:
    """Counters for tests and logs."""

    rounds: int = 0
    requests: int = 0
    skipped: int = 0
    refreshes: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    stored: int = 0
    pruned: int = 0


class SyntheticsRunner:
    """Runs every synthetic of `pipelines()` until `run`'s `stop` is set (see the module
    docstring). `clock` gives the times stored with results and the pruning cut-off; the schedule
    runs on the event loop's monotonic clock."""

    def __init__(self, store: EngineStore, pipelines: PipelinesFn, *, concurrency: int = DEFAULT_CONCURRENCY,
                 timeout_s: float = DEFAULT_TIMEOUT_S, clock: Clock = _utc_now,
                 retention: timedelta = DEFAULT_RETENTION, prune_every_s: float = PRUNE_EVERY_S,
                 refresh_s: float = REFRESH_S) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.pipelines = pipelines
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.clock = clock
        self.retention = retention
        self.prune_every_s = prune_every_s
        self.refresh_s = refresh_s
        self.stats = _Stats()
        self._schedules: dict[tuple[str, str, float], _Schedule] = {}
        self._rounds: set[asyncio.Task[None]] = set()
        self._pending: list[SyntheticResult] = []
        self._refreshed_at: float | None = None
        self._no_interval: set[tuple[str, str]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set (or the task is cancelled): rounds in flight are cancelled,
        results already in are written."""
        loop = asyncio.get_running_loop()
        semaphore = asyncio.Semaphore(self.concurrency)
        wake_writer = asyncio.Event()
        # No proxies from the environment (the cells are reached directly), no keep-alive (see the
        # module docstring), redirects not followed (a 3xx is a status like any other).
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits, trust_env=False,
                                     follow_redirects=False) as client:
            helpers = [asyncio.create_task(self._write_loop(wake_writer), name="synthetics-writer"),
                       asyncio.create_task(self._prune_loop(), name="synthetics-prune")]
            try:
                while not stop.is_set():
                    delay = 0.0
                    try:
                        await self._round(loop.time(), client, semaphore, wake_writer)
                    except Exception:  # one bad round never stops the runner (nor spins it)
                        log.exception("synthetics round failed; the runner goes on")
                        delay = MIN_INTERVAL_S
                    delay = max(delay, self._next_wake() - loop.time())
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
            finally:
                tasks = [*helpers, *self._rounds]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._flush()

    # ------------------------------------------------------------ rounds

    async def _round(self, now: float, client: httpx.AsyncClient, semaphore: asyncio.Semaphore,
                     wake_writer: asyncio.Event) -> None:
        """Re-read the definitions when it is time, then start every synthetic that is due."""
        last = self._refreshed_at
        # Read when it is time to, and for every slot that comes after the last read (synthetics
        # due at one wake share one read).
        if last is None or now - last >= self.refresh_s or any(
                last < schedule.due <= now for schedule in self._schedules.values()):
            self._refreshed_at = now
            try:
                await self._refresh(now)
            except Exception:  # the synthetics as last read keep running
                log.exception("reading the pipelines' synthetics failed; running them as last read")
        now = asyncio.get_running_loop().time()
        for schedule in list(self._schedules.values()):
            if schedule.due <= now:
                self._start(schedule, now, client, semaphore, wake_writer)

    async def _refresh(self, now: float) -> None:
        """Take the synthetics of the pipelines as they are now: new ones are due at once, removed
        ones stop (a round in flight finishes), the others keep their schedule with the new hosts
        and requests."""
        pipelines = await asyncio.to_thread(self.pipelines)
        self.stats.refreshes += 1
        wanted: dict[tuple[str, str, float], tuple[Probe, ...]] = {}
        for name, view in pipelines:
            for synthetic in view.synthetics:
                if synthetic.interval_seconds is None:
                    if (name, synthetic.name) not in self._no_interval:
                        self._no_interval.add((name, synthetic.name))
                        log.warning("synthetic %s of pipeline %s has no interval: not run", synthetic.name, name)
                    continue
                interval = max(MIN_INTERVAL_S, float(synthetic.interval_seconds))
                key = (name, synthetic.name, interval)
                wanted[key] = wanted.get(key, ()) + probes_of(view, synthetic)
        for key in [key for key in self._schedules if not wanted.get(key)]:
            del self._schedules[key]
        for key, probes in wanted.items():
            if not probes:
                continue
            schedule = self._schedules.get(key)
            if schedule is None:
                self._schedules[key] = _Schedule(key[0], key[1], key[2], probes, due=now)
            else:
                schedule.probes = probes

    def _start(self, schedule: _Schedule, now: float, client: httpx.AsyncClient, semaphore: asyncio.Semaphore,
               wake_writer: asyncio.Event) -> None:
        if schedule.task is not None and not schedule.task.done():
            self.stats.skipped += 1
            if not schedule.overrun:
                schedule.overrun = True
                log.warning("synthetic %s of pipeline %s: the previous round (%d requests) is still running at the "
                            "next interval; slots are skipped until it ends", schedule.synthetic, schedule.pipeline,
                            len(schedule.probes))
        else:
            if schedule.overrun:
                schedule.overrun = False
                log.warning("synthetic %s of pipeline %s keeps its interval again", schedule.synthetic,
                            schedule.pipeline)
            task = asyncio.create_task(self._send_all(schedule.pipeline, schedule.synthetic, schedule.probes,
                                                      client, semaphore, wake_writer),
                                       name=f"synthetic {schedule.pipeline}/{schedule.synthetic}")
            schedule.task = task
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)
        # Drift-free: whole intervals after the first round; slots already past are skipped.
        schedule.due += (math.floor((now - schedule.due) / schedule.interval_s) + 1) * schedule.interval_s

    def _next_wake(self) -> float:
        refresh = (self._refreshed_at or 0.0) + self.refresh_s
        return min([refresh, *(schedule.due for schedule in self._schedules.values())])

    async def _send_all(self, pipeline: str, synthetic: str, probes: Sequence[Probe], client: httpx.AsyncClient,
                        semaphore: asyncio.Semaphore, wake_writer: asyncio.Event) -> None:
        self.stats.rounds += 1
        results = await asyncio.gather(*(self._send(pipeline, synthetic, probe, client, semaphore)
                                         for probe in probes), return_exceptions=True)
        for result in results:
            if isinstance(result, SyntheticResult):
                self._pending.append(result)
            elif isinstance(result, Exception):  # _send records every error of a request; this is a bug
                log.error("synthetic %s of pipeline %s: a request could not be recorded: %r", synthetic, pipeline,
                          result)
        wake_writer.set()

    async def _send(self, pipeline: str, synthetic: str, probe: Probe, client: httpx.AsyncClient,
                    semaphore: asyncio.Semaphore) -> SyntheticResult:
        """One request; every way it can go wrong is its result, never an exception."""
        async with semaphore:
            self.stats.requests += 1
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            sent = self.clock()
            began = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                async with asyncio.timeout(self.timeout_s):
                    response = await client.send(client.build_request(probe.request.method, probe.url), stream=True)
                    status = response.status_code
                    await response.aclose()
            except (TimeoutError, httpx.TimeoutException):
                error = f"no response within {self.timeout_s:g} s"
            except httpx.ConnectError as failure:
                error = f"cannot connect: {_connect_reason(failure)}"
            except Exception as failure:  # noqa: BLE001 - whatever it is, it is this request's failure
                error = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            finally:
                self.stats.in_flight -= 1
            duration_ms = int((time.monotonic() - began) * 1000)
        success = status == probe.request.expect_status
        if status is not None and not success:
            error = f"status {status}, expected {probe.request.expect_status}"
        return SyntheticResult(pipeline=pipeline, synthetic=synthetic, stage=probe.stage, host=probe.host,
                               method=probe.request.method, path=probe.request.path, time=sent, success=success,
                               status=status, error=error, duration_ms=duration_ms)

    # ------------------------------------------------------------ writing and pruning

    async def _write_loop(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await asyncio.to_thread(self.store.record_synthetic_results, rows)
        except Exception:
            log.exception("storing %d synthetic results failed; they are kept for the next write", len(rows))
            self._pending[:0] = rows
            del self._pending[:-MAX_PENDING]
            return
        self.stats.stored += len(rows)

    async def _prune_loop(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(self.store.prune_synthetic_results, self.clock() - self.retention)
                self.stats.pruned += deleted
                if deleted:
                    log.info("pruned %d synthetic results older than %s", deleted, self.retention)
            except Exception:
                log.exception("pruning synthetic results failed; the runner goes on")
            await asyncio.sleep(self.prune_every_s)


def _connect_reason(failure: BaseException) -> str:
    """Why a connection failed, from the innermost OS error (httpx says only "All connection
    attempts failed" for a refused connection)."""
    reason = str(failure) or type(failure).__name__
    seen: set[int] = set()
    cause: BaseException | None = failure
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno is not None and cause.strerror:
            reason = cause.strerror
        cause = cause.__cause__ or cause.__context__
    return reason


# ---------------------------------------------------------------- the counts the datapoints gate reads


class SyntheticReading(NamedTuple):
    """`value`: the count of the synthetic's requests with that outcome since the deploy finished
    (named as a metric source's reading: `count` is a tuple method); None when no
    request of it (of either outcome) reached the hosts since then: no data, never a pass.
    `silent`: some host of the stage had no request of the synthetic for SILENT_INTERVALS
    intervals (engine.md: the gate then waits with code `synthetic_silent`)."""

    value: int | None
    silent: bool


def synthetic_reading(store: EngineStore, pipeline: str, name: str, signal: str, hosts: Sequence[str],
                      since: datetime, interval_s: float | None, now: datetime) -> SyntheticReading:
    """The reading of `{source: synthetic, name, signal}` for a stage whose hosts are `hosts`,
    counted since `since` (the deploy's end), as of `now`. `interval_s` is the synthetic's interval
    (None when it has none, or the pipeline defines no such synthetic: it never runs, so it is
    silent). Silent is judged per host: a host of the stage that no request reached for three
    intervals leaves its share of the counts missing, and missing data is never a pass."""
    success = store.synthetic_counts(pipeline, name, hosts, since, signal="success")
    failure = store.synthetic_counts(pipeline, name, hosts, since, signal="failure")
    count = None if success + failure == 0 else (success if signal == "success" else failure)
    return SyntheticReading(count, bool(silent_hosts(store, pipeline, name, hosts, interval_s, now)))


def silent_hosts(store: EngineStore, pipeline: str, name: str, hosts: Sequence[str], interval_s: float | None,
                 now: datetime) -> list[str]:
    """The hosts (as given) that no request of synthetic `name` reached for SILENT_INTERVALS
    intervals before `now` (every host when `interval_s` is None); for the reason of a
    `synthetic_silent` wait."""
    if interval_s is None:
        return list(hosts)
    horizon = now - timedelta(seconds=SILENT_INTERVALS * max(MIN_INTERVAL_S, interval_s))
    silent = []
    for host in hosts:
        last = store.synthetic_last_seen(pipeline, name, [host])
        if last is None or last <= horizon:
            silent.append(host)
    return silent


__all__ = [
    "DEFAULT_CONCURRENCY", "DEFAULT_RETENTION", "DEFAULT_TIMEOUT_S", "Probe", "StoredPipelines", "SyntheticReading",
    "SyntheticsRunner", "probes_of", "silent_hosts", "synthetic_reading",
]
