"""`pipewarden server` (the embedded default) and `pipewarden worker` (engine.md "The parts and how
they start").

The server, in one process: the state dir's lock and admin token; Temporal's dev server (unless
`--temporal` names one) as a child process in its own process group that dies with this process;
one engine worker (the four task queues of worker.py); the git poller; the housekeeping loop
(override expiry, org config reloads); the alarm evaluator (engine/alarms.py: every alarm of every
stage of the config's pipelines, every poll.gates, states in the store); the synthetics runner (engine/synthetics.py: the synthetics
of the config's pipelines, as their newest valid definitions in the store say, results kept 7
days); and the web app on `--listen`, which the caller hands in as
an ASGI app factory (the web layer sits above the engine and is never imported here).

Stopping: SIGINT/SIGTERM set one event; the web app, the poller and the worker stop, then
Temporal last. If this process is killed outright, Temporal gets SIGTERM from the kernel
(PR_SET_PDEATHSIG) and a restart on the same state dir stops whatever is left (`temporal.pid`),
re-starts the workflow of any execution that has none, and Temporal continues every execution
where it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from pipewarden.engine.activities.engine import EngineActivities, engine_sources
from pipewarden.engine.alarms import AlarmEvaluator
from pipewarden.engine.client import EngineClient
from pipewarden.engine.contract import SIGNAL_WAKE
from pipewarden.engine.decisions import Decisions
from pipewarden.engine.devserver import DEFAULT_NAMESPACE, DevServer, free_port, kill_leftover
from pipewarden.engine.domain.events import draft
from pipewarden.engine.domain.status import OCCUPYING, StageRunStatus
from pipewarden.engine.poller import Poller
from pipewarden.engine.recovery import resume_missing_workflows
from pipewarden.engine.setup import ConfigWatcher, ResolvedPipeline, check_org_config, resolve_pipelines
from pipewarden.engine.statedir import (
    ServerInfo,
    StateDirLock,
    admin_token,
    prepare_state_dir,
    remove_server_info,
    write_server_info,
)
from pipewarden.engine.store import EngineStore, default_url
from pipewarden.engine.synthetics import StoredPipelines, SyntheticsRunner
from pipewarden.engine.versioning import cannot_continue
from pipewarden.engine.wakeups import Stage, Wakeups
from pipewarden.engine.worker import workers
from pipewarden.errors import ConfigError, UsageError
from pipewarden.model.engine_config import EngineConfig

log = logging.getLogger("pipewarden.server")

DEFAULT_TEMPORAL_PORT = 7233
TEMPORAL_PID_FILE = "temporal.pid"
# Safety first (issue 13): WAL keeps readers off the writer's back, and synchronous=FULL makes every
# commit durable before Temporal acknowledges it, so neither a process crash nor a power cut loses
# an acknowledged workflow step. Measured cost in benchmarks/RESULTS.md ("engine").
TEMPORAL_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=full")
ACTIVITY_THREADS = 32
"""Threads of the control and build queues' activities (short store work; builds)."""
DEPLOY_THREADS = 100
"""Threads of the deploy queue's activities, as many as its worker takes at once (Temporal's
default of 100 activity slots): a deploy or a rollback holds one for as long as its hooks run,
mostly waiting on their processes. Sharing the 32 above, 100 rollbacks at once queued
for a thread for seconds before their first hook (benchmarks/RESULTS.md, issue 14)."""

AppFactory = Callable[["Services"], Any]
"""Makes the ASGI app served on `--listen` (web.app.create_app)."""


@dataclass
class Services:
    """What the web app and the other fronts of a running server use."""

    store: EngineStore
    client: EngineClient
    temporal: Client
    config: EngineConfig
    state_dir: Path
    token: str
    health: Callable[[], Awaitable[bool]]
    decisions: Decisions
    """The OPA decision API's answers, over the same activities (gates, org config) the worker runs."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (port 0 = a free one) -> (host, port); UsageError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, such as 127.0.0.1:8080 (port 0 picks a free one)")
    return host, int(port)


GATE_FLUSH_SECONDS = 0.5
"""How late the server and workers write a gate's latest values when nothing about it changed
(store/latest.py): the server's `status` shows the counts of a worker's bakes, and anything
reading the database directly shows any, up to this late (its own bakes' at once)."""


def open_store(config: EngineConfig, state_dir: Path) -> EngineStore:
    """The store the config names: `sqlite` (engine.db in the state dir) or a database URL, with
    the write-behind of unchanged gate evaluations (GATE_FLUSH_SECONDS) and, on SQLite, its writes
    in a process of their own (store/writer.py)."""
    url = default_url(state_dir) if config.store == "sqlite" else config.store
    return EngineStore(url, gate_flush_seconds=GATE_FLUSH_SECONDS, separate_writer=True)


def empty_config(state_dir: Path) -> EngineConfig:
    """The config of a server started without `--config`: no pipelines, every rule at its default."""
    return EngineConfig(path=state_dir / "(no --config)", pipelines=())


def make_activities(config: EngineConfig, store: EngineStore, state_dir: Path,
                    pipelines: Sequence[ResolvedPipeline]) -> EngineActivities:
    """The activities of this engine: its org config and policies, and its pipelines (the policy
    gate's fleet rules compare with those only)."""
    return EngineActivities(store, state_dir,
                            org_config=str(config.org_config) if config.org_config is not None else None,
                            policies=[str(path) for path in config.policies],
                            pipelines=[pipeline.name for pipeline in pipelines],
                            prometheus_url=config.prometheus_url)


@contextmanager
def _executors() -> Any:
    """(the control and build activities' threads, the deploy activities' threads)"""
    executor = ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="pipewarden-activity")
    deploys = ThreadPoolExecutor(max_workers=DEPLOY_THREADS, thread_name_prefix="pipewarden-deploy")
    try:
        yield executor, deploys
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        deploys.shutdown(wait=False, cancel_futures=True)


class _Uvicorn:
    """uvicorn without its own signal handling (the server owns SIGINT/SIGTERM)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn  # a heavy import, only for the server

        class Server(uvicorn.Server):
            @contextmanager
            def capture_signals(self) -> Any:
                yield

        self.sock = sock
        self.server = Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))

    async def serve(self) -> None:
        await self.server.serve(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error} "
                         "(choose another --listen, or port 0 for a free one)") from error
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _temporal_port(host: str) -> int:
    """The embedded Temporal's port: the default 7233 when free, else a free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, DEFAULT_TEMPORAL_PORT))
            return DEFAULT_TEMPORAL_PORT
        except OSError:
            return free_port(host)


def start_embedded_temporal(state_dir: Path, namespace: str) -> DevServer:
    """Stop whatever a killed server of this state dir left, then start the dev server on the state
    dir's `temporal.db` (loopback only) and record its PID."""
    db_file = state_dir / "temporal.db"
    pid_file = state_dir / TEMPORAL_PID_FILE
    with suppress(OSError, ValueError):
        leftover = int(pid_file.read_text().strip())
        if kill_leftover(leftover, str(db_file)):
            log.warning("stopped a Temporal left behind by an earlier server (pid %d)", leftover)
    server = DevServer(db_file=db_file, log_file=state_dir / "logs" / "temporal.log",
                       port=_temporal_port("127.0.0.1"), namespace=namespace,
                       sqlite_pragmas=TEMPORAL_SQLITE_PRAGMAS, die_with_parent=True)
    server.start(timeout=120)
    assert server.process is not None
    pid_file.write_text(f"{server.process.pid}\n")
    return server


def _stop_on_signals() -> asyncio.Event:
    """An event SIGINT and SIGTERM set (signal handlers only on the main thread, as asyncio
    allows; elsewhere, such as in tests, the caller sets it)."""
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def connect_temporal(address: str, namespace: str, queue_prefix: str) -> Client:
    """A client of the Temporal at `address`, once this version's workflow code is known to
    continue what runs there (refuse_unreplayable); ConfigError when it cannot be reached."""
    try:
        temporal = await Client.connect(address, namespace=namespace)
    except Exception as error:
        raise ConfigError(f"cannot reach Temporal at {address}: {error}") from error
    await refuse_unreplayable(temporal, queue_prefix)
    return temporal


async def refuse_unreplayable(temporal: Client, queue_prefix: str) -> None:
    """ConfigError naming the executions in flight that this version's workflow code cannot
    continue (engine.md "Upgrades"); nothing when all can."""
    problems = await cannot_continue(temporal, queue_prefix=queue_prefix)
    if problems:
        named = "; ".join(f"{problem.workflow_id} ({problem.error.splitlines()[0][:200]})" for problem in problems)
        raise ConfigError(f"this version of pipewarden cannot continue {len(problems)} execution(s) in flight: {named}. "
                          "Run the previous version until they finish, or cancel them, then upgrade")


async def _housekeeping(store: EngineStore, config: EngineConfig, stop: asyncio.Event,
                        clock: Callable[[], datetime]) -> None:
    """Every `poll.gates`: expire overrides (their `override_expired` events), drop the deploy
    halts of stage runs that have ended, and notice changed org config or policy files
    (`config_reloaded`; the gates read the files afresh each time)."""
    watcher = ConfigWatcher(config)
    await asyncio.to_thread(watcher.changed)  # records the files as they are at the start
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.poll_gates_seconds)
        if stop.is_set():
            return
        try:
            now = clock()
            await asyncio.to_thread(store.expire_overrides, now)
            await asyncio.to_thread(store.prune_deploy_halts)
            files = await asyncio.to_thread(watcher.changed)
            if files:
                await asyncio.to_thread(store.append_event, draft("config_reloaded", time=now, data={"files": files}))
        except Exception:  # one bad round never stops the server
            log.exception("housekeeping round failed")


def wake_stage(store: EngineStore, temporal: Client,
               local: Wakeups | None = None) -> Callable[[Sequence[Stage]], Awaitable[None]]:
    """Wake the executions waiting at the entries of `stages` or occupying them (their alarms
    changed): the bakes running in this process at once, all of them before anything else
    (`local`), then every other such workflow by a signal, the signals sent together. Not the
    runs rolling back: no gate is judged there any more, and a signal would make the workflow
    replace a bake that runs its rollback (patch `bake-rolls-back`) by one that waits for it.
    Why all the local ones first: a store read or a signal between two of them delayed the last
    of 100 by seconds (benchmarks/RESULTS.md, issue 14)."""
    async def wake(stages: Sequence[Stage]) -> None:
        # A bake woken here judges at once; a signal would only make its workflow replace it.
        here = {stage for stage in stages if local is not None and local.notify(stage) > 0}
        runs = await asyncio.to_thread(store.stage_runs, statuses=WAKEABLE,
                                       pipelines={pipeline for pipeline, _ in stages})
        wanted = set(stages)
        executions = dict.fromkeys(
            run.execution for run in runs if (run.pipeline, run.stage) in wanted
            and not ((run.pipeline, run.stage) in here and run.status is StageRunStatus.BAKING))
        limit = asyncio.Semaphore(SIGNALS_AT_ONCE)

        async def signal_one(execution: str) -> None:
            async with limit:
                try:
                    await temporal.get_workflow_handle(execution).signal(SIGNAL_WAKE)
                except Exception as error:  # noqa: BLE001 - it has ended meanwhile: nothing to wake
                    log.debug("no wake-up for %s: %s", execution, error)

        await asyncio.gather(*(signal_one(execution) for execution in executions))
    return wake


WAKEABLE = frozenset({StageRunStatus.WAITING, *OCCUPYING} - {StageRunStatus.ROLLING_BACK})
"""The stage runs a change of their stage's alarms wakes: waiting at its entry, deploying, testing,
baking (not rolling back: see wake_stage)."""
SIGNALS_AT_ONCE = 16
"""Wake-up signals in flight at once (each is a call to Temporal's frontend)."""


@dataclass
class EngineServer:
    """The parts of a running server, started and stopped together (see the module docstring)."""

    config: EngineConfig
    state_dir: Path
    listen: tuple[str, int] = ("127.0.0.1", 8080)
    temporal_address: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    queue_prefix: str = ""
    announce: Callable[[str], None] = print
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def run(self, app_factory: AppFactory) -> None:
        """Run in the foreground until SIGINT/SIGTERM. ConfigError / UsageError before anything
        starts (a second server on the state dir, a bad config, a taken --listen)."""
        self.state_dir = prepare_state_dir(self.state_dir)
        lock = StateDirLock(self.state_dir)
        lock.acquire()
        try:
            token = admin_token(self.state_dir)
            check_org_config(self.config)
            pipelines = resolve_pipelines(self.config, mirrors_dir=self.state_dir / "mirrors")
            sock = _bind(*self.listen)
            embedded = None
            try:
                if self.temporal_address is None:
                    embedded = start_embedded_temporal(self.state_dir, self.namespace)
                    address = embedded.address
                else:
                    address = self.temporal_address
                asyncio.run(self._serve(app_factory, token, pipelines, address, sock))
            finally:
                sock.close()
                remove_server_info(self.state_dir)
                if embedded is not None:
                    embedded.stop()
                    with suppress(OSError):
                        (self.state_dir / TEMPORAL_PID_FILE).unlink()
        finally:
            lock.release()

    async def _serve(self, app_factory: AppFactory, token: str, pipelines: Sequence[ResolvedPipeline],
                     address: str, sock: socket.socket) -> None:
        stop = _stop_on_signals()
        temporal = await connect_temporal(address, self.namespace, self.queue_prefix)
        store = open_store(self.config, self.state_dir)
        try:
            await self._run_parts(app_factory, token, pipelines, address, sock, temporal, store, stop)
        finally:
            store.close()

    async def _run_parts(self, app_factory: AppFactory, token: str, pipelines: Sequence[ResolvedPipeline],
                         address: str, sock: socket.socket, temporal: Client, store: EngineStore,
                         stop: asyncio.Event) -> None:
        engine_client = EngineClient(temporal, store, queue_prefix=self.queue_prefix,
                                     poll_gates_seconds=self.config.poll_gates_seconds)
        with _executors() as (executor, deploys):
            activities = make_activities(self.config, store, self.state_dir, pipelines)
            engine_workers = workers(temporal, activities, executor=executor, deploy_executor=deploys,
                                     task_queue_prefix=self.queue_prefix)
            worker_tasks = [asyncio.create_task(worker.run(), name="worker") for worker in engine_workers]

            async def health() -> bool:
                if any(task.done() for task in worker_tasks):
                    return False
                try:
                    await temporal.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=self.namespace), timeout=timedelta(seconds=3))
                except Exception:  # noqa: BLE001 - any failure to answer is "not healthy"
                    return False
                return True

            services = Services(store=store, client=engine_client, temporal=temporal, config=self.config,
                                state_dir=self.state_dir, token=token, health=health,
                                decisions=Decisions(activities, poll_gates_seconds=self.config.poll_gates_seconds),
                                clock=self.clock)
            web = _Uvicorn(app_factory(services), sock)
            web_task = asyncio.create_task(web.serve(), name="web")
            started = await resume_missing_workflows(temporal, store, queue_prefix=self.queue_prefix,
                                                     poll_gates_seconds=self.config.poll_gates_seconds)
            if started:
                log.warning("started the missing workflows of %s", ", ".join(started))
            poller = Poller(store, pipelines, self._starter(engine_client), org_config=self.config.org_config,
                            policies=self.config.policies)
            background = [
                asyncio.create_task(poller.run(stop, self.config.poll_git_seconds, self.clock), name="poller"),
                asyncio.create_task(_housekeeping(store, self.config, stop, self.clock), name="housekeeping"),
                asyncio.create_task(SyntheticsRunner(store, StoredPipelines(store, [p.name for p in pipelines]),
                                                     clock=self.clock).run(stop), name="synthetics"),
                asyncio.create_task(AlarmEvaluator(store, engine_sources(store, self.config.prometheus_url),
                                                   [p.name for p in pipelines], poll_seconds=self.config.poll_gates_seconds,
                                                   notify=wake_stage(store, temporal, activities.wakeups)
                                                   ).run(stop, self.clock),
                                    name="alarms"),
            ]
            await self._announce_when_healthy(health, sock, address, stop, worker_tasks, web_task)
            await stop.wait()
            web.stop()
            for task in background:
                task.cancel()
            for worker in engine_workers:
                with suppress(Exception):
                    await worker.shutdown()
            await asyncio.gather(web_task, *worker_tasks, *background, return_exceptions=True)

    @staticmethod
    def _starter(engine_client: EngineClient) -> Callable[[str, str], Awaitable[object]]:
        async def start(pipeline: str, commit: str) -> object:
            return await engine_client.start_polled(pipeline, commit)
        return start

    async def _announce_when_healthy(self, health: Callable[[], Awaitable[bool]], sock: socket.socket,
                                     address: str, stop: asyncio.Event, worker_tasks: list[asyncio.Task[None]],
                                     web_task: asyncio.Task[None]) -> None:
        """Write server.json and say where the server listens once it is healthy."""
        url = _url(sock)
        while not stop.is_set():
            for task in [*worker_tasks, web_task]:
                if task.done():
                    error = task.exception()
                    raise ConfigError(f"the server could not start its {task.get_name()}: {error}")
            if await health():
                write_server_info(self.state_dir, ServerInfo(url, os.getpid(), address))
                self.announce(f"pipewarden server: listening on {url}; state in {self.state_dir}; "
                              f"Temporal at {address}; {len(self.config.pipelines)} pipeline(s)")
                return
            await asyncio.sleep(0.1)


@dataclass
class EngineWorker:
    """`pipewarden worker`: one more worker on an existing Temporal, sharing the store and the
    state dir's artifact store with the server."""

    config: EngineConfig
    state_dir: Path
    temporal_address: str
    namespace: str = DEFAULT_NAMESPACE
    queue_prefix: str = ""
    announce: Callable[[str], None] = print

    def run(self) -> None:
        self.state_dir = prepare_state_dir(self.state_dir)
        check_org_config(self.config)
        pipelines = resolve_pipelines(self.config, mirrors_dir=self.state_dir / "mirrors")
        asyncio.run(self._run(pipelines))

    async def _run(self, pipelines: Sequence[ResolvedPipeline]) -> None:
        stop = _stop_on_signals()
        temporal = await connect_temporal(self.temporal_address, self.namespace, self.queue_prefix)
        store = open_store(self.config, self.state_dir)
        try:
            with _executors() as (executor, deploys):
                engine_workers = workers(temporal, make_activities(self.config, store, self.state_dir, pipelines),
                                         executor=executor, deploy_executor=deploys,
                                         task_queue_prefix=self.queue_prefix)
                async with AsyncExitStack() as stack:
                    for worker in engine_workers:
                        await stack.enter_async_context(worker)
                    self.announce(f"pipewarden worker: serving {self.temporal_address}; state in {self.state_dir}")
                    await stop.wait()
        finally:
            store.close()
