"""The release engine's numbers (issue 13, "Tests and numbers"), measured side by side.

    python benchmarks/engine.py [--quick] [--reps 7] [--concurrent 100] [--settings safe default]
                                [--workdir /tmp/pipewarden-bench/engine] [--json FILE] [--wait-calm SECONDS]

The pipeline: 4 stages over 10 hosts (beta 1 host; gamma 1 target of 2 hosts, min_healthy 50%;
prod-canary 1 target of 3 hosts, min_healthy 33%; prod-wave 2 targets of 2 hosts in parallel,
min_healthy 50%: the shape of the release demo), every hook `true`, `bake: {duration: 0s}` (the
schema allows 0s; the workflow then sleeps not at all and the bake_time gate passes at once), a
one-command build, no tests. 40 hook runs per execution, 28 of them one after the other.

(a) Engine overhead. Temporal's dev server is started as `pipewarden server` starts its embedded
one (engine/devserver.py's DevServer with engine/server.py's TEMPORAL_SQLITE_PRAGMAS), then
`pipewarden server --temporal ADDRESS --config ...` as a process (its worker, poller and HTTP
API) and, on the same dev server, a second process with a bare Temporal worker (this file,
`--bare-worker`): a workflow that runs the same hook commands as activities (`/bin/sh -c`), in
the same order and parallelism (the batches come from engine.domain.plan.stage_plan: targets in
parallel, batches in order, hooks in order), and nothing else. Each repetition releases a new
commit through the engine (POST /api/v1/executions, then the workflow's result), runs the bare
workflow with its hooks on the workflow's own task queue (Temporal's simplest setup) and once more
with its hooks on a task queue of their own (as the engine puts them on pipewarden-deploy), each
kind going first in turn. Also per repetition: 20 no-op activities in a row
and 20 `sh -c true` activities in a row (Temporal's own cost per activity here). Afterwards the
workflows' histories say where the engine's time goes: activities per type, their durations, and
the time no activity was pending (workflow tasks); a scratch store times the store writes of one
hook run, and the engine's way of running a command (setpriv + a guard shell) is timed against
a plain `/bin/sh -c`.

(b) 100 concurrent executions: 100 repositories, one pipeline each (own hosts, so no host lease
is shared), in one EngineConfig; the server starts while their branch `release` does not exist;
then the benchmark creates the branch in all of them at once and the poller (poll.git 1s)
releases all 100. Wall time from the branch update to the last `succeeded` (the store's
`finished`), executions per minute. Once per Temporal SQLite setting: `safe` = the embedded
default's pragmas (journal_mode=wal, synchronous=full), `default` = the dev server's own.

(c) Peak memory during (b): RSS (VmRSS) of the server process (worker included) plus the
Temporal process, read from /proc every 100 ms.

Every process is started in its own process group and stopped by group at the end (or on error
or Ctrl-C); ports are free ones. Prints Markdown tables and writes JSON (`--json`, default
WORKDIR/engine-results.json). `--quick`: 2 repetitions, 5 concurrent executions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

# --------------------------------------------------------------------------- the bare side
# Kept at the top and light: the worker's sandbox imports this file again for each workflow.

HOOKS = ("stop", "install", "start", "validate")
BARE_QUEUE = "bench-bare"
HOOK_QUEUE_SUFFIX = "-hooks"
BARE_THREADS = 32  # engine/server.py ACTIVITY_THREADS


@dataclass
class BareCall:
    command: str
    cwd: str
    host: str
    hook: str
    stage: str


@dataclass
class BarePlan:
    """stages -> targets -> batches -> hosts, and the hook commands in order."""

    stages: list[list[list[list[str]]]]
    stage_names: list[str]
    commands: list[str]
    cwd: str
    hook_queue: str = ""
    """Where the hook activities go: "" = the workflow's own task queue (Temporal then starts them
    eagerly, in the workflow task's answer); else a queue of their own, as the engine's
    pipewarden-deploy."""


@dataclass
class ChainPlan:
    count: int
    command: str | None  # None: a no-op activity
    cwd: str = "/"


@activity.defn(name="bench_hook")
def bench_hook(call: BareCall) -> int:
    env = {**os.environ, "PIPEWARDEN_HOST": call.host, "PIPEWARDEN_HOOK": call.hook, "PIPEWARDEN_STAGE": call.stage}
    return subprocess.run(["/bin/sh", "-c", call.command], cwd=call.cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode


@activity.defn(name="bench_noop")
def bench_noop(number: int) -> int:
    return number


@workflow.defn(name="BenchBareRelease")
class BareRelease:
    @workflow.run
    async def run(self, plan: BarePlan) -> int:
        ran = 0

        async def host(stage: str, name: str) -> None:
            nonlocal ran
            for hook, command in zip(HOOKS, plan.commands, strict=True):
                code = await workflow.execute_activity(bench_hook, BareCall(command, plan.cwd, name, hook, stage),
                                                       task_queue=plan.hook_queue or None,
                                                       start_to_close_timeout=timedelta(seconds=120))
                ran += 1
                if code != 0:
                    raise ApplicationError(f"{hook} on {name} exited {code}", non_retryable=True)

        async def target(stage: str, batches: list[list[str]]) -> None:
            for batch in batches:
                await asyncio.gather(*(host(stage, name) for name in batch))

        for stage, targets in zip(plan.stage_names, plan.stages, strict=True):
            await asyncio.gather(*(target(stage, batches) for batches in targets))
        return ran


@workflow.defn(name="BenchChain")
class Chain:
    @workflow.run
    async def run(self, plan: ChainPlan) -> int:
        for number in range(plan.count):
            if plan.command is None:
                await workflow.execute_activity(bench_noop, number, start_to_close_timeout=timedelta(seconds=60))
            else:
                await workflow.execute_activity(bench_hook, BareCall(plan.command, plan.cwd, "chain", "chain", "chain"),
                                                start_to_close_timeout=timedelta(seconds=60))
        return plan.count


def run_bare_worker(address: str, task_queue: str) -> None:
    """`--bare-worker`: serve the bare workflows until SIGTERM/SIGINT."""
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.client import Client
    from temporalio.worker import Worker

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = await Client.connect(address)
        with ThreadPoolExecutor(max_workers=BARE_THREADS) as executor:
            async with Worker(client, task_queue=task_queue, workflows=[BareRelease, Chain],
                              activities=[bench_hook, bench_noop], activity_executor=executor), \
                    Worker(client, task_queue=task_queue + HOOK_QUEUE_SUFFIX, activities=[bench_hook],
                           activity_executor=executor):
                print("bare worker ready", flush=True)
                await stop.wait()

    asyncio.run(serve())


# --------------------------------------------------------------------------- the benchmark

TOPOLOGY: list[tuple[str, str, list[tuple[str, int]], str | None]] = [
    ("beta", "preprod", [("beta-1", 1)], None),
    ("gamma", "preprod", [("gamma-1", 2)], "50%"),
    ("prod-canary", "prod", [("cell-1", 3)], "33%"),
    ("prod-wave", "prod", [("cell-2", 2), ("cell-3", 2)], "50%"),
]
HOOK_COMMAND = "true"
POLL = "{git: 1s, gates: 1s}"
SETTINGS = ("safe", "default", "relaxed")
RELAXED_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
"""For the record: WAL with synchronous=NORMAL loses nothing when a process crashes, but may lose the
last commits on a power cut or an OS crash (docs/engine.md), which the engine does not accept."""
CHAIN = 20


def pipeline_yaml(name: str) -> str:
    hosts_prefix = name.replace("bench-", "b")
    lines = ["apiVersion: pipewarden/v1", "kind: Pipeline", f"metadata: {{name: {name}, team: bench}}",
             "build:", '  commands: ["mkdir -p dist && cp app.txt dist/"]', "  artifact: dist/", "stages:"]
    hooks = ", ".join(f'{hook}: "{HOOK_COMMAND}"' for hook in HOOKS)
    for stage, kind, targets, min_healthy in TOPOLOGY:
        lines += [f"  - name: {stage}", f"    type: {kind}", "    targets:"]
        for target, count in targets:
            hosts = ", ".join(f'"{hosts_prefix}-{target}-{i}:80"' for i in range(1, count + 1))
            lines.append(f"      - {{name: {target}, hosts: [{hosts}]}}")
        extra = f", min_healthy: {min_healthy}" if min_healthy else ""
        lines += [f"    deploy: {{hooks: {{{hooks}}}{extra}}}", "    bake: {duration: 0s}", "    rollback: automatic"]
    return "\n".join(lines) + "\n"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


def make_repo(path: Path, name: str) -> str:
    """A repository with one commit on main; its hash."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Bench")
    git(path, "config", "user.email", "bench@example.com")
    (path / "pipeline.yaml").write_text(pipeline_yaml(name))
    (path / "app.txt").write_text("v0\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "v0")
    return git(path, "rev-parse", "HEAD")


def side_commit(repo: Path, label: str) -> str:
    """A new commit on the side branch (the poller watches main only): released by hand."""
    if git(repo, "rev-parse", "--abbrev-ref", "HEAD") != "side":
        git(repo, "checkout", "-q", "-B", "side")
    (repo / "app.txt").write_text(f"{label}\n")
    git(repo, "commit", "-q", "-am", label)
    return git(repo, "rev-parse", "HEAD")


# --------------------------------------------------------------------------- processes

def _pdeathsig() -> Any:
    """preexec: SIGTERM to the child when this process dies (Linux), so nothing outlives a killed run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)

    return preexec


def start_group(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True,
                                preexec_fn=_pdeathsig())  # noqa: PLW1509 - prctl only, as devserver.py does


def stop_group(process: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> int | None:
    """SIGTERM to the group, SIGKILL after `timeout`; the return code."""
    if process is None:
        return None
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return process.returncode


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """RSS of the named processes every `interval` s and the 1-minute load average every 5 s, in a
    thread. (Short-lived children, hooks and git, are left out: a child between vfork and exec
    shows its parent's memory, so summing children's RSS or PSS counts the server again.)"""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_sum = 0
        self.peak_parts: dict[str, int] = {}
        self.peak_each = {name: 0 for name in pids}
        self.samples = 0
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last_load = 0.0
        while not self._stop.is_set():
            parts = {name: rss_kib(pid) for name, pid in self.pids.items()}
            total = sum(parts.values())
            if total > self.peak_sum:
                self.peak_sum, self.peak_parts = total, parts
            for name, value in parts.items():
                self.peak_each[name] = max(self.peak_each[name], value)
            if time.monotonic() - last_load >= 5:
                self.loads.append(os.getloadavg()[0])
                last_load = time.monotonic()
            self.samples += 1
            self._stop.wait(self.interval)

    def result(self) -> dict[str, Any]:
        mib = 1024
        return {"peak_server_plus_temporal_mib": round(self.peak_sum / mib, 1),
                "at_peak_mib": {name: round(value / mib, 1) for name, value in self.peak_parts.items()},
                "peak_each_mib": {name: round(value / mib, 1) for name, value in self.peak_each.items()},
                "samples": self.samples,
                "load_1min": [round(load, 2) for load in self.loads]}


@dataclass
class EngineRun:
    """A dev server (with `pragmas`) and `pipewarden server --temporal` on it, in `root`."""

    root: Path
    config: Path
    pragmas: tuple[str, ...]
    devserver: Any = None
    server: subprocess.Popen[bytes] | None = None
    url: str = ""
    token: str = ""
    address: str = ""

    @property
    def state(self) -> Path:
        return self.root / "state"

    def start(self) -> EngineRun:
        from pipewarden.engine.devserver import DevServer

        self.devserver = DevServer(db_file=self.root / "temporal.db", log_file=self.root / "temporal.log",
                                   sqlite_pragmas=self.pragmas, die_with_parent=True)
        self.devserver.start(timeout=120)
        self.address = self.devserver.address
        self.server = start_group([sys.executable, "-m", "pipewarden", "server", "--state-dir", str(self.state),
                                   "--listen", "127.0.0.1:0", "--config", str(self.config),
                                   "--temporal", self.address], self.root / "server.log",
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 180
        info = self.state / "server.json"
        while True:
            if self.server.poll() is not None:
                raise SystemExit(f"pipewarden server exited {self.server.returncode}: "
                                 f"{(self.root / 'server.log').read_text(errors='replace')[-3000:]}")
            if info.exists():
                self.url = json.loads(info.read_text())["url"]
                if http_ok(self.url + "/api/v1/health"):
                    break
            if time.monotonic() > deadline:
                raise SystemExit("pipewarden server did not become healthy within 180 s")
            time.sleep(0.1)
        self.token = (self.state / "admin-token").read_text().strip()
        return self

    @property
    def pids(self) -> dict[str, int]:
        assert self.server is not None and self.devserver is not None and self.devserver.process is not None
        return {"server": self.server.pid, "temporal": self.devserver.process.pid}

    def stop(self) -> None:
        try:
            code = stop_group(self.server)
            if code not in (None, 0, -signal.SIGTERM):
                print(f"  (pipewarden server exited {code}; see {self.root / 'server.log'})", file=sys.stderr)
        finally:
            self.server = None
            if self.devserver is not None:
                self.devserver.stop()
                self.devserver = None


def http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def write_config(path: Path, entries: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("apiVersion: pipewarden/v1\nkind: EngineConfig\n" f"poll: {POLL}\npipelines:\n" + "".join(entries))
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# --------------------------------------------------------------------------- histories

def activity_intervals(events: Sequence[Any]) -> tuple[list[dict[str, Any]], float, float, int]:
    """Every activity of a history: type, scheduled, started, closed (epoch seconds); the workflow's
    start and end; the number of workflow tasks."""
    from temporalio.api.enums.v1 import EventType

    scheduled: dict[int, dict[str, Any]] = {}
    started = ended = 0.0
    tasks = 0
    for event in events:
        when = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = when
        elif kind in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED):
            ended = when
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = {"type": event.activity_task_scheduled_event_attributes.activity_type.name,
                                         "scheduled": when}
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            scheduled[event.activity_task_started_event_attributes.scheduled_event_id]["started"] = when
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]["closed"] = when
    return list(scheduled.values()), started, ended, tasks


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    end = float("-inf")
    for low, high in sorted(intervals):
        if low > end:
            total += high - low
            end = high
        elif high > end:
            total += high - end
            end = high
    return total


def analyse(events: Sequence[Any], hook_type: str) -> dict[str, Any]:
    """Where one workflow's time went: hook activities (their union: parallel hooks count once),
    other activities, and the rest (no activity pending: workflow tasks and Temporal's round
    trips between one activity's end and the next one's start)."""
    acts, started, ended, tasks = activity_intervals(events)
    done = [a for a in acts if "closed" in a and "started" in a]
    hooks = [(a["scheduled"], a["closed"]) for a in done if a["type"] == hook_type]
    other = [(a["scheduled"], a["closed"]) for a in done if a["type"] != hook_type]
    span = ended - started
    hook_union = union_seconds(hooks)
    other_union = union_seconds(other)
    both = union_seconds(hooks + other)
    by_type: dict[str, dict[str, list[float]]] = {}
    for a in done:
        entry = by_type.setdefault(a["type"], {"queue_ms": [], "run_ms": []})
        entry["queue_ms"].append((a["started"] - a["scheduled"]) * 1000)
        entry["run_ms"].append((a["closed"] - a["started"]) * 1000)
    return {"span_s": span, "hook_s": hook_union, "other_activities_s": other_union, "no_activity_s": span - both,
            "activities": len(acts), "workflow_tasks": tasks, "by_type": by_type}


# --------------------------------------------------------------------------- (a) overhead

def bare_plan(repo: Path) -> BarePlan:
    """The engine's own plan of the pipeline (stage_plan), as plain lists for the bare workflow."""
    import yaml

    from pipewarden.engine.domain.plan import stage_plan
    from pipewarden.model.view import pipeline_view

    view = pipeline_view(yaml.safe_load((repo / "pipeline.yaml").read_text()))
    stages = []
    for stage in view.stages:
        plan = stage_plan(stage)
        assert [hook.phase for hook in plan.hooks] == list(HOOKS)
        stages.append([[list(batch) for batch in target.batches] for target in plan.targets])
    return BarePlan(stages, [stage.name for stage in view.stages], [HOOK_COMMAND] * len(HOOKS), str(repo))


def serial_hook_steps(plan: BarePlan) -> int:
    return sum(max(len(batches) for batches in targets) for targets in plan.stages) * len(HOOKS)


async def _overhead(run: EngineRun, repo: Path, reps: int, plan: BarePlan) -> dict[str, Any]:
    import httpx
    from temporalio.client import Client

    client = await Client.connect(run.address)
    headers = {"Authorization": f"Bearer {run.token}"}
    async with httpx.AsyncClient(base_url=run.url, headers=headers, timeout=60) as http:
        # The poller's first sight of main releases bench-000-1: the engine's warm-up.
        deadline = time.monotonic() + 300
        while True:
            listed = (await http.get("/api/v1/executions", params={"pipeline": "bench-000"})).json()["executions"]
            if listed and listed[-1]["status"] not in ("running",):
                if listed[-1]["status"] != "succeeded":
                    raise SystemExit(f"the warm-up execution ended {listed[-1]}")
                break
            if time.monotonic() > deadline:
                raise SystemExit("the warm-up execution did not end within 300 s")
            await asyncio.sleep(0.2)

        async def engine_once(label: str) -> tuple[float, str]:
            commit = await asyncio.to_thread(side_commit, repo, label)
            began = time.perf_counter()
            answer = await http.post("/api/v1/executions", json={"pipeline": "bench-000", "commit": commit})
            answer.raise_for_status()
            ident = answer.json()["id"]
            result = await asyncio.wait_for(client.get_workflow_handle(ident).result(), 600)
            wall = time.perf_counter() - began
            status = result.get("status") if isinstance(result, dict) else getattr(result, "status", None)
            if status != "succeeded":
                raise SystemExit(f"{ident} ended {result}")
            return wall, ident

        async def workflow_once(name: str, arg: Any, ident: str) -> float:
            began = time.perf_counter()
            await client.execute_workflow(name, arg, id=ident, task_queue=BARE_QUEUE,
                                          execution_timeout=timedelta(seconds=600))
            return time.perf_counter() - began

        tag = f"{os.getpid()}-{int(time.time())}"
        await workflow_once("BenchBareRelease", plan, f"bare-warm-{tag}")
        await workflow_once("BenchChain", ChainPlan(3, None), f"chain-warm-{tag}")
        separate = dataclasses.replace(plan, hook_queue=BARE_QUEUE + HOOK_QUEUE_SUFFIX)
        await workflow_once("BenchBareRelease", separate, f"bare-queue-warm-{tag}")
        engine: list[float] = []
        bare: list[float] = []
        bare_queue: list[float] = []
        noop: list[float] = []
        shell: list[float] = []
        engine_ids: list[str] = []
        bare_ids: list[str] = []
        bare_queue_ids: list[str] = []
        sides = ["engine", "bare", "bare_queue"]
        for rep in range(reps):
            for side in sides[rep % 3:] + sides[:rep % 3]:  # each kind goes first in turn
                if side == "engine":
                    wall, ident = await engine_once(f"rep-{rep}-{tag}")
                    engine.append(wall)
                    engine_ids.append(ident)
                elif side == "bare":
                    ident = f"bare-{rep}-{tag}"
                    bare.append(await workflow_once("BenchBareRelease", plan, ident))
                    bare_ids.append(ident)
                else:
                    ident = f"bare-queue-{rep}-{tag}"
                    bare_queue.append(await workflow_once("BenchBareRelease", separate, ident))
                    bare_queue_ids.append(ident)
            noop.append(await workflow_once("BenchChain", ChainPlan(CHAIN, None), f"noop-{rep}-{tag}") / CHAIN)
            shell.append(await workflow_once("BenchChain", ChainPlan(CHAIN, HOOK_COMMAND, str(repo)),
                                             f"shell-{rep}-{tag}") / CHAIN)
            print(f"  rep {rep + 1}/{reps}: engine {engine[-1]:.2f} s, bare {bare[-1]:.2f} s, "
                  f"ratio {engine[-1] / bare[-1]:.2f}; bare with hooks on their own queue {bare_queue[-1]:.2f} s; "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        engine_histories = [await client.get_workflow_handle(i).fetch_history() for i in engine_ids]
        bare_histories = [await client.get_workflow_handle(i).fetch_history() for i in bare_ids]
        bare_queue_histories = [await client.get_workflow_handle(i).fetch_history() for i in bare_queue_ids]
        phases = []
        for ident in engine_ids:
            shown = (await http.get(f"/api/v1/executions/{ident}")).json()
            phases.append(execution_phases(shown))
    from pipewarden.engine.contract import A_HOOK

    return {"engine_s": engine, "bare_s": bare, "bare_hook_queue_s": bare_queue, "noop_activity_s": noop,
            "shell_activity_s": shell,
            "engine_ids": engine_ids,
            "engine_analysis": [analyse(h.events, A_HOOK) for h in engine_histories],
            "bare_analysis": [analyse(h.events, "bench_hook") for h in bare_histories],
            "bare_hook_queue_analysis": [analyse(h.events, "bench_hook") for h in bare_queue_histories],
            "engine_phases": phases}


def execution_phases(shown: dict[str, Any]) -> dict[str, float]:
    """From the execution's events: start -> build finished (policy gate and build), then each
    stage from its first event to its `bake_finished`, and the end."""
    events = shown["events"]
    start = parse_iso(shown["started"])
    out: dict[str, float] = {}
    for event in events:
        at = parse_iso(event["time"]) - start
        if event["type"] == "build_finished":
            out["policy_and_build_s"] = at
        if event["type"] == "bake_finished" and event.get("stage"):
            out[f"{event['stage']}_done_s"] = at
    out["total_s"] = parse_iso(shown["finished"]) - start
    return out


def micro_store(workdir: Path, rounds: int) -> dict[str, Any]:
    """The store writes one hook run makes in a deploy (activities/deploy.py and run_hook), on a
    scratch engine.db on the same file system: the host's lease at its first hook, begin_hook_run
    (the host `deploying` in it at the first hook), set_hook_pgid, finish_hook_run (its hook event,
    and the host `ok` at the last hook, in one transaction), the lease given back after the last."""
    from pipewarden.engine.store import EngineStore

    scratch = workdir / "store-micro"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    store = EngineStore.for_state_dir(scratch)
    times: dict[str, list[float]] = {}
    per_run: list[float] = []

    @contextlib.contextmanager
    def timed(name: str) -> Any:
        began = time.perf_counter()
        yield
        times.setdefault(name, []).append((time.perf_counter() - began) * 1000)

    artifact = "0" * 12
    try:
        now = datetime.now(UTC)
        execution = store.create_execution("micro", "0" * 40, trigger="release", now=now)
        for number in range(rounds):
            host = f"micro-{number // 4}:80"
            hook = HOOKS[number % 4]
            key = f"{execution.id}/run/{number}/hook"
            began = time.perf_counter()
            now = datetime.now(UTC)
            holder = f"{execution.id}/run/{number // 4}/lease"
            if hook == HOOKS[0]:
                with timed("acquire_host_lease"):
                    store.acquire_host_lease(host, holder, 1, now=now, seconds=90)
            with timed("begin_hook_run"):
                start = store.begin_hook_run(key, execution=execution.id, pipeline="micro", stage="beta",
                                             target="beta-1", host=host, hook=hook, artifact=artifact, now=now,
                                             log="logs/x.log", first=hook == HOOKS[0])
            with timed("set_hook_pgid"):
                store.set_hook_pgid(key, start.run.attempt, 12345)
            with timed("finish_hook_run"):
                store.finish_hook_run(key, start.run.attempt, exit_code=0, timed_out=False, duration_ms=1, now=now,
                                      last=hook == HOOKS[-1])
            if hook == HOOKS[-1]:
                with timed("release_host_lease"):
                    store.release_host_lease(host, holder)
            per_run.append((time.perf_counter() - began) * 1000)
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"per_hook_run_ms": per_run, "per_call_ms": times,
            "writes_per_hook_run": sum(len(v) for v in times.values()) / rounds}


def micro_run_hook(workdir: Path, repo: Path, rounds: int) -> dict[str, Any]:
    """The engine's hook activity itself (EngineActivities.run_hook) in this process, under
    Temporal's ActivityEnvironment, on a scratch state dir: its wall time per hook run, and how
    much of it went to the store's writes, to running the command (run_command, less the
    set_hook_pgid write it makes once the command runs) and to the artifact checks. One hook at a
    time: the contention of parallel hooks for the store's write lock is not in these numbers."""
    import functools

    from temporalio.testing import ActivityEnvironment

    import pipewarden.engine.activities.engine as engine_activities
    from pipewarden.engine.contract import BuildRequest, HookRequest
    from pipewarden.engine.store import EngineStore

    scratch = workdir / "hook-micro"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    store = EngineStore.for_state_dir(scratch)
    activities = engine_activities.EngineActivities(store, scratch)
    spent: dict[str, float] = {}

    def timing(name: str, call: Any) -> Any:
        @functools.wraps(call)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + (time.perf_counter() - began) * 1000
        return wrapper

    original_run_command = getattr(engine_activities, "run_command")  # noqa: B009 - patched below, and put back
    try:
        commit = git(repo, "rev-parse", "main")
        execution = store.create_execution("bench-000", commit, trigger="release", now=datetime.now(UTC))
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id=execution.id, activity_id="build")
        built = env.run(activities.build, BuildRequest(execution.id, "bench-000", str(repo), commit, "pipeline.yaml",
                                                       ["mkdir -p dist && cp app.txt dist/"], [], "dist/", 60))
        assert built.ok and built.artifact is not None, built
        for name in ("acquire_host_lease", "begin_hook_run", "finish_hook_run", "release_host_lease"):
            setattr(store, name, timing("store", getattr(store, name)))
        store.set_hook_pgid = timing("set_hook_pgid", store.set_hook_pgid)  # type: ignore[method-assign]
        activities.artifacts.ensure_checkout = timing("artifacts", activities.artifacts.ensure_checkout)  # type: ignore[method-assign]
        activities.artifacts.unpack = timing("artifacts", activities.artifacts.unpack)  # type: ignore[method-assign]
        setattr(engine_activities, "run_command", timing("run_command", original_run_command))  # noqa: B010
        rows: list[dict[str, float]] = []
        for number in range(rounds):
            hook = HOOKS[number % 4]
            host = f"micro-{number // 4}:80"
            env.info = dataclasses.replace(env.info, activity_id=f"hook-{number}")
            spent.clear()
            began = time.perf_counter()
            answer = env.run(activities.run_hook, HookRequest(
                execution.id, "bench-000", str(repo), built.artifact, commit, "beta", "beta-1", host, [host], hook,
                HOOK_COMMAND, 60, False, False, hook == HOOKS[0], hook == HOOKS[-1]))
            total = (time.perf_counter() - began) * 1000
            assert answer.ok, answer
            pgid = spent.get("set_hook_pgid", 0.0)  # written from inside run_command, once the command runs
            rows.append({"total_ms": total, "store_writes_ms": spent.get("store", 0.0) + pgid,
                         "command_ms": spent.get("run_command", 0.0) - pgid, "artifacts_ms": spent.get("artifacts", 0.0),
                         "rest_ms": total - spent.get("store", 0.0) - spent.get("run_command", 0.0)
                         - spent.get("artifacts", 0.0)})
    finally:
        setattr(engine_activities, "run_command", original_run_command)  # noqa: B010
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {key: [row[key] for row in rows] for key in rows[0]}


def micro_process(cwd: Path, rounds: int) -> dict[str, list[float]]:
    """The engine's way of running a hook (activities/process.py run_command: setpriv --pdeathsig,
    a guard sh, then sh -c, output to a log) against a plain `/bin/sh -c`, alternating."""
    from pipewarden.engine.activities.process import run_command

    log = cwd.parent / "micro-process.log"
    engine: list[float] = []
    plain: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        result = run_command(HOOK_COMMAND, cwd=cwd, env=dict(os.environ), log=log, timeout_seconds=60)
        engine.append((time.perf_counter() - began) * 1000)
        assert result.ok
        began = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", HOOK_COMMAND], cwd=cwd, env=dict(os.environ), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        plain.append((time.perf_counter() - began) * 1000)
    log.unlink(missing_ok=True)
    return {"engine_run_command_ms": engine, "plain_sh_ms": plain}


def part_a(workdir: Path, reps: int, pragmas: tuple[str, ...]) -> dict[str, Any]:
    root = workdir / "overhead"
    if root.exists():
        shutil.rmtree(root)
    repo = root / "repos" / "bench-000"
    make_repo(repo, "bench-000")
    config = write_config(root / "engine.yaml", [f"  - {{repo: {repo}}}\n"])
    plan = bare_plan(repo)
    run = EngineRun(root, config, pragmas)
    bare_worker = None
    load_before = os.getloadavg()
    try:
        run.start()
        bare_worker = start_group([sys.executable, str(Path(__file__).resolve()), "--bare-worker", run.address,
                                   "--task-queue", BARE_QUEUE], root / "bare-worker.log")
        pids = {**run.pids, "bare_worker": bare_worker.pid}
        with Sampler(pids) as sampler:
            result = asyncio.run(_overhead(run, repo, reps, plan))
        result["memory"] = sampler.result()
    finally:
        stop_group(bare_worker)
        run.stop()
    result["load_before"] = [round(x, 2) for x in load_before]
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["hook_runs"] = sum(len(b) for targets in plan.stages for batches in targets for b in batches) * len(HOOKS)
    result["serial_hook_steps"] = serial_hook_steps(plan)
    result["plan"] = {"stages": plan.stage_names, "batches": plan.stages}
    print("  store and process micro-benchmarks ...", flush=True)
    result["store"] = micro_store(workdir, 200 if reps > 2 else 40)
    result["process"] = micro_process(repo, 60 if reps > 2 else 10)
    result["run_hook"] = micro_run_hook(workdir, repo, 80 if reps > 2 else 12)
    return result


# --------------------------------------------------------------------------- (b)+(c) concurrency

def make_fleet(workdir: Path, count: int) -> list[tuple[str, Path, str]]:
    fleet = workdir / "fleet"
    out = []
    for number in range(1, count + 1):
        name = f"bench-{number:03d}"
        repo = fleet / name
        if (repo / ".git").exists() and (repo / "pipeline.yaml").read_text() == pipeline_yaml(name):
            head = git(repo, "rev-parse", "refs/heads/main")
        else:
            head = make_repo(repo, name)
        out.append((name, repo, head))
    return out


def set_release_refs(fleet: list[tuple[str, Path, str]], present: bool) -> None:
    """Create (or delete) `refs/heads/release` at main's commit in every repository at once: a
    loose ref file each, renamed into place (what `git update-ref` does, without 100 processes)."""
    for _, repo, head in fleet:
        ref = repo / ".git" / "refs" / "heads" / "release"
        if present:
            temporary = ref.with_name("release.tmp")
            temporary.write_text(head + "\n")
            os.replace(temporary, ref)
        else:
            ref.unlink(missing_ok=True)


def journal_mode(db: Path) -> str:
    """The journal mode recorded in a Temporal SQLite file (WAL is kept in the file; SQLite's default is delete)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    except sqlite3.Error as error:
        return f"unknown ({error})"


async def _concurrent(run: EngineRun, fleet: list[tuple[str, Path, str]]) -> dict[str, Any]:
    import httpx

    count = len(fleet)
    async with httpx.AsyncClient(base_url=run.url, headers={"Authorization": f"Bearer {run.token}"},
                                 timeout=120) as http:
        # The poller's first round has seen every branch missing (one branch_missing each).
        deadline = time.monotonic() + 300
        while True:
            events = (await http.get("/api/v1/events")).json()
            if sum(1 for e in events if e["type"] == "branch_missing") >= count:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the poller did not see every branch within 300 s")
            await asyncio.sleep(0.5)
        cpu_before = {name: cpu_seconds(pid) for name, pid in run.pids.items()}
        triggered = time.time()
        began = time.perf_counter()
        set_release_refs(fleet, True)
        deadline = time.monotonic() + 3600
        while True:
            await asyncio.sleep(1.0)
            listed = (await http.get("/api/v1/executions", params={"limit": 1000})).json()["executions"]
            if len(listed) >= count and all(e["status"] not in ("running",) for e in listed):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{count} executions did not end within an hour")
        observed = time.perf_counter() - began
        cpu_after = {name: cpu_seconds(pid) for name, pid in run.pids.items()}
    statuses: dict[str, int] = {}
    for e in listed:
        statuses[e["status"]] = statuses.get(e["status"], 0) + 1
    first_started = min(parse_iso(e["started"]) for e in listed)
    last_started = max(parse_iso(e["started"]) for e in listed)
    last_finished = max(parse_iso(e["finished"]) for e in listed)
    durations = [parse_iso(e["finished"]) - parse_iso(e["started"]) for e in listed]
    wall = last_finished - triggered
    return {"executions": len(listed), "statuses": statuses, "wall_s": wall, "observed_s": observed,
            "first_started_after_s": first_started - triggered, "last_started_after_s": last_started - triggered,
            "first_start_to_last_finish_s": last_finished - first_started,
            "per_minute": len(listed) / wall * 60, "execution_s": durations,
            "cpu_s": {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after}}


def part_b(workdir: Path, count: int, settings: list[str], pragmas_of: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    fleet = make_fleet(workdir, count)
    results = []
    for setting in settings:
        root = workdir / f"concurrent-{setting}"
        if root.exists():
            shutil.rmtree(root)
        set_release_refs(fleet, False)
        entries = [f"  - {{repo: {repo}, branch: release, pipeline: pipeline.yaml, name: {name}}}\n"
                   for name, repo, _ in fleet]
        config = write_config(root / "engine.yaml", entries)
        run = EngineRun(root, config, pragmas_of[setting])
        print(f"  {setting} ({', '.join(pragmas_of[setting]) or 'the dev server default'}): {count} executions ...",
              flush=True)
        load_before = os.getloadavg()
        try:
            run.start()
            idle = {name: round(rss_kib(pid) / 1024, 1) for name, pid in run.pids.items()}
            with Sampler(run.pids) as sampler:
                result = asyncio.run(_concurrent(run, fleet))
            result["memory"] = sampler.result()
            result["memory"]["idle_mib"] = idle
        finally:
            run.stop()
            set_release_refs(fleet, False)
        result["journal_mode"] = journal_mode(root / "temporal.db")
        result.update({"setting": setting, "pragmas": list(pragmas_of[setting]),
                       "load_before": [round(x, 2) for x in load_before],
                       "load_after": [round(x, 2) for x in os.getloadavg()]})
        print(f"    wall {result['wall_s']:.1f} s, {result['per_minute']:.1f} executions/min, "
              f"statuses {result['statuses']}, peak RSS {result['memory']['peak_server_plus_temporal_mib']} MiB",
              flush=True)
        results.append(result)
    return results


# --------------------------------------------------------------------------- report

def report_a(a: dict[str, Any]) -> None:
    engine, bare = a["engine_s"], a["bare_s"]
    ratios = [e / b for e, b in zip(engine, bare, strict=True)]
    hooks = a["hook_runs"]
    per_hook = [(e - b) * 1000 / hooks for e, b in zip(engine, bare, strict=True)]
    print(f"\n(a) engine overhead: {len(engine)} interleaved repetitions, {hooks} hook runs per release "
          f"({a['serial_hook_steps']} one after the other); median (range)\n")
    print("| run | wall s | ratio engine/bare | overhead per hook run ms |")
    print("|---|---:|---:|---:|")
    print(f"| engine (`pipewarden server`, new commit each) | {spread(engine)} | {spread(ratios)} | {spread(per_hook, 0)} |")
    print(f"| bare Temporal workflow, same hooks | {spread(bare)} | | |")
    queued = a.get("bare_hook_queue_s", [])
    if queued:
        print(f"| bare, hooks on a task queue of their own (as pipewarden-deploy) | {spread(queued)} | "
              f"{spread([e / q for e, q in zip(engine, queued, strict=True)])} | "
              f"{spread([(e - q) * 1000 / hooks for e, q in zip(engine, queued, strict=True)], 0)} |")
    print(f"| {CHAIN} no-op activities in a row, per activity | {spread([x * 1000 for x in a['noop_activity_s']], 0)} ms | | |")
    print(f"| {CHAIN} `sh -c true` activities in a row, per activity | "
          f"{spread([x * 1000 for x in a['shell_activity_s']], 0)} ms | | |")
    ea, ba = a["engine_analysis"], a["bare_analysis"]
    print("\nWhere the time goes (medians over the repetitions, seconds): hook activities (their union: "
          "parallel hooks count once), other activities, and no activity pending (workflow tasks, round trips)\n")
    print("| workflow | span | hook activities | other activities | no activity pending | activities | workflow tasks |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, rows in (("engine", ea), ("bare", ba), ("bare, hooks on their own queue", a.get("bare_hook_queue_analysis", []))):
        if not rows:
            continue
        print(f"| {label} | {median([r['span_s'] for r in rows]):.2f} | {median([r['hook_s'] for r in rows]):.2f} | "
              f"{median([r['other_activities_s'] for r in rows]):.2f} | {median([r['no_activity_s'] for r in rows]):.2f} | "
              f"{median([r['activities'] for r in rows]):.0f} | {median([r['workflow_tasks'] for r in rows]):.0f} |")
    print("\nActivities of one engine execution, by type (count; median ms queued = scheduled to started, "
          "median ms run = started to completed, over every repetition)\n")
    print("| activity | per execution | queued ms | run ms | sum of run s per execution |")
    print("|---|---:|---:|---:|---:|")
    merged: dict[str, dict[str, list[float]]] = {}
    for row in ea:
        for kind, entry in row["by_type"].items():
            slot = merged.setdefault(kind, {"queue_ms": [], "run_ms": []})
            slot["queue_ms"] += entry["queue_ms"]
            slot["run_ms"] += entry["run_ms"]
    for kind, entry in sorted(merged.items(), key=lambda item: -sum(item[1]["run_ms"])):
        count = len(entry["run_ms"]) / len(ea)
        print(f"| {kind} | {count:g} | {median(entry['queue_ms']):.0f} | {median(entry['run_ms']):.0f} | "
              f"{sum(entry['run_ms']) / len(ea) / 1000:.2f} |")
    for label, rows in (("(bare) bench_hook", ba), ("(bare, own queue) bench_hook", a.get("bare_hook_queue_analysis", []))):
        if not rows:
            continue
        run_ms = [ms for row in rows for ms in row["by_type"].get("bench_hook", {}).get("run_ms", [])]
        queue_ms = [ms for row in rows for ms in row["by_type"].get("bench_hook", {}).get("queue_ms", [])]
        print(f"| {label} | {len(run_ms) / len(rows):g} | {median(queue_ms):.0f} | {median(run_ms):.0f} | "
              f"{sum(run_ms) / len(rows) / 1000:.2f} |")
    store, process = a["store"], a["process"]
    print(f"\nStore writes of one hook run (scratch engine.db, {len(store['per_hook_run_ms'])} hook runs): "
          f"{store['writes_per_hook_run']:.1f} write transactions, {spread(store['per_hook_run_ms'], 1)} ms per hook run")
    for name, values in store["per_call_ms"].items():
        print(f"  {name}: {spread(values, 1)} ms")
    print(f"Running `true`: the engine's run_command {spread(process['engine_run_command_ms'], 1)} ms, "
          f"plain /bin/sh -c {spread(process['plain_sh_ms'], 1)} ms")
    hook = a["run_hook"]
    print(f"run_hook in-process (ActivityEnvironment, one at a time, {len(hook['total_ms'])} runs), ms: total "
          f"{spread(hook['total_ms'], 1)}; store writes {spread(hook['store_writes_ms'], 1)}; command "
          f"{spread(hook['command_ms'], 1)}; artifact checks {spread(hook['artifacts_ms'], 1)}; "
          f"the rest (heartbeat thread, environment, log path) {spread(hook['rest_ms'], 1)}")
    phases = a["engine_phases"]
    if phases:
        keys = list(phases[0])
        print("\nEngine phases from the execution's events (median s since execution_started): " + ", ".join(
            f"{key} {median([p.get(key, float('nan')) for p in phases]):.2f}" for key in keys))
    memory = a["memory"]
    print(f"Peak RSS during (a): server + Temporal {memory['peak_server_plus_temporal_mib']} MiB "
          f"(each: {memory['peak_each_mib']})")


def report_b(results: list[dict[str, Any]]) -> None:
    if not results:
        return
    count = results[0]["executions"]
    print(f"\n(b) {count} concurrent executions (separate pipelines), and (c) peak memory\n")
    print("| Temporal SQLite | wall s | executions/min | first / last start after s | one execution s (median, max) "
          "| CPU s server / Temporal | peak RSS server + Temporal MiB | server / Temporal at peak | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        memory = r["memory"]
        at_peak = memory["at_peak_mib"]
        loads = memory["load_1min"] or [0.0]
        print(f"| {r['setting']} ({', '.join(r['pragmas']) or 'no --sqlite-pragma'}; file: {r['journal_mode']}) | {r['wall_s']:.1f} | "
              f"{r['per_minute']:.1f} | {r['first_started_after_s']:.1f} / {r['last_started_after_s']:.1f} | "
              f"{median(r['execution_s']):.1f}, "
              f"{max(r['execution_s']):.1f} | {r['cpu_s'].get('server', 0)} / {r['cpu_s'].get('temporal', 0)} | "
              f"{memory['peak_server_plus_temporal_mib']} | {at_peak.get('server', 0)} / {at_peak.get('temporal', 0)} | "
              f"{min(loads):.1f}-{max(loads):.1f} |")
    for r in results:
        if r["statuses"] != {"succeeded": r["executions"]}:
            print(f"WARNING: {r['setting']}: not every execution succeeded: {r['statuses']}")


def tree_label() -> dict[str, Any]:
    import pipewarden

    src = Path(pipewarden.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "engine"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head, dirty = "not a git tree", ""
    return {"pipewarden": str(src), "commit": head, "engine_code_uncommitted_changes": bool(dirty)}


def wait_calm(limit: float, threshold: float = 1.5) -> list[float]:
    """Wait up to `limit` seconds for the 1-minute load average to drop below `threshold`."""
    seen = [os.getloadavg()[0]]
    deadline = time.monotonic() + limit
    while seen[-1] >= threshold and time.monotonic() < deadline:
        time.sleep(30)
        seen.append(os.getloadavg()[0])
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 repetitions, 5 concurrent executions")
    parser.add_argument("--reps", type=int, help="repetitions of (a) (default 7; 2 with --quick)")
    parser.add_argument("--concurrent", type=int, help="executions of (b) (default 100; 5 with --quick)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="Temporal SQLite settings for (b), in this order")
    parser.add_argument("--skip", nargs="*", choices=["a", "b"], default=[], help="parts to leave out")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pipewarden-bench/engine"))
    parser.add_argument("--json", type=Path, help="where to write the results (default WORKDIR/engine-results.json)")
    parser.add_argument("--wait-calm", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to drop below 1.5")
    parser.add_argument("--bare-worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", default=BARE_QUEUE, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        run_bare_worker(args.bare_worker, args.task_queue)
        return
    from pipewarden.engine.server import TEMPORAL_SQLITE_PRAGMAS

    reps = args.reps or (2 if args.quick else 7)
    count = args.concurrent or (5 if args.quick else 100)
    pragmas_of = {"safe": tuple(TEMPORAL_SQLITE_PRAGMAS), "default": (), "relaxed": RELAXED_PRAGMAS}
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    output = args.json or workdir / "engine-results.json"
    calm = wait_calm(args.wait_calm) if args.wait_calm else [os.getloadavg()[0]]
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_at_start": [round(x, 2) for x in os.getloadavg()],
                    "load_while_waiting_for_calm": [round(x, 2) for x in calm]},
        "tree": tree_label(), "pipeline": pipeline_yaml("bench-000"), "started": datetime.now(UTC).isoformat(),
    }
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()}; "
          f"pipewarden from {results['tree']['pipewarden']} ({results['tree']['commit']})")
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(workdir)], capture_output=True, text=True, check=False)
    results["machine"]["workdir_file_system"] = kind.stdout.strip()
    print(f"workdir {workdir} (file system: {kind.stdout.strip()})")
    try:
        if "a" not in args.skip:
            print(f"(a) overhead, {reps} repetitions ...", flush=True)
            results["overhead"] = part_a(workdir, reps, pragmas_of["safe"])
            report_a(results["overhead"])
        if "b" not in args.skip:
            print(f"\n(b) {count} concurrent executions ...", flush=True)
            results["concurrent"] = part_b(workdir, count, args.settings, pragmas_of)
            report_b(results["concurrent"])
    finally:
        results["finished"] = datetime.now(UTC).isoformat()
        results["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1, default=str))
        print(f"\nJSON: {output}")
    a = results.get("overhead")
    b = results.get("concurrent")
    if a:
        ratio = median([e / x for e, x in zip(a["engine_s"], a["bare_s"], strict=True)])
        print(f"target (a) ratio <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'} ({ratio:.2f})")
    if b:
        peak = max(r["memory"]["peak_server_plus_temporal_mib"] for r in b)
        print(f"target (c) peak memory < 600 MiB: {'met' if peak < 600 else 'NOT met'} ({peak} MiB)")


if __name__ == "__main__":
    main()
