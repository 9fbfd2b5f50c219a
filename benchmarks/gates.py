"""Issue 14's numbers: the cost of a gate round, and the time to react, on a real engine.

    python benchmarks/gates.py [--quick] [--count 100] [--poll-gates 2] [--scrape 1] [--trials 3]
                               [--window 20] [--workdir /tmp/pipewarden-bench/gates] [--json FILE]
                               [--wait-calm SECONDS] [--many-only [--py-spy PROGRAM]]

The engine is started as benchmarks/engine.py starts it (its EngineRun: Temporal's dev server with
the embedded default's SQLite pragmas, then `pipewarden server --temporal ...` as a process group
on a free port), with a real Prometheus (Debian's, tests/engine/prometheus_helpers.py: a free
loopback port, its own process group, scraping every `--scrape` seconds) that scrapes a
prometheus-client exporter in this process: per host a request counter
`pw_requests_total{host, code}` (live traffic: one good request per host every second) and a gauge
`pw_error_ratio{host}`.

`--count` pipelines, one repository each, one prod stage `canary` of one host, four hooks (a shell
script that appends the execution, hook, rollback flag and `date +%s.%N` to a record file),
`rollback: automatic`, the stage's alarm `errors` (`max(pw_error_ratio{host=~"$__hosts"}) > 0.05`,
`periods: 2`) and datapoints (positive / negative: `sum(increase(pw_requests_total{host=~"$__hosts",
code="200"|"500"}[$__since_deploy]))`, `min_positive: 1`, `max_negative: 0`). v1 bakes 1 s; every
later version bakes 60 minutes, so it stays baking (its datapoints pass, bake_time holds it) with
a round of its gates every `poll.gates`. The poller releases a commit when the benchmark moves the
pipeline's `release` branch to it (poll.git 1 s).

(1) Cost of one gate round. Steady states of `--window` seconds: 1 execution baking; `--count`
executions waiting at their entry (the alarm firing on every host); `--count` executions baking.
Per state: CPU seconds of the server process (worker, alarm evaluator, poller), Temporal and
Prometheus; Prometheus's own count of instant queries (`prometheus_http_requests_total`,
handler /api/v1/query); from the workflows' histories, the gate activities that ran in the window
(`bake_gates` or `entry_gates`), their run time and their time queued. A "round" is one gate
activity per execution (plus the evaluator's reads of the alarms over the same poll).

(2) Time to react. From a negative datapoint (the 500 counter bumped on the canary's host), or
from the alarm's gauge set above its threshold, becoming visible in Prometheus (the first sample
carrying it, its timestamp read back from Prometheus: the scrape time) to the first rollback hook
starting (the hook run's `started` in the engine store, and the hook script's own timestamp):
`--trials` times for 1 baking execution, then once for all `--count` baking at once (the slowest
and the median). For the alarm, the breach that completes `periods` is visible `periods - 1` polls
after the first breaching sample at the earliest, and the time is given from both moments. The
events split it: the gate round that saw it (its `inputs.now`), `rollback_started`, the hook.
Target (issue 14): within one `poll.gates` plus 2 s.

Every process is stopped by process group at the end (or on error or Ctrl-C); ports are free
ones. Prints Markdown tables and writes JSON (`--json`, default WORKDIR/gates-results.json).
`--quick`: 5 executions, 1 trial, 8 s windows. `--many-only`: only the `--count` executions
baking (their steady state and both reacts), a faster loop while working on that path; with
`--py-spy PROGRAM` (py-spy 0.4.0: `pip download py-spy==0.4.0`, unzip the wheel, its
`py_spy-0.4.0.data/scripts/py-spy`) the server's GIL holder is sampled during each part into
WORKDIR/run/py-spy-PART.txt (collapsed stacks).

Bake rounds are counted from the store (each round records when it evaluated the `bake_time`
gate; sampled every 0.2 s), so they are counted whatever runs them: one `bake_round` activity
per round (executions started before patch `bake-stage`), or one `bake_stage` activity for the
whole bake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Reused, not copied: the engine benchmark's process helpers (benchmarks/engine.py, beside this
# file) and the tests' real Prometheus and exporter (tests/engine/prometheus_helpers.py).
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "engine"))

from prometheus_helpers import Exporter, PrometheusServer, missing

from engine import (
    EngineRun,
    cpu_seconds,
    git,
    median,
    parse_iso,
    tree_label,
    wait_calm,
)

STAGE = "canary"
ALARM_QUERY = 'max(pw_error_ratio{host=~"$__hosts"})'
GOOD = 'sum(increase(pw_requests_total{host=~"$__hosts",code="200"}[$__since_deploy]))'
BAD = 'sum(increase(pw_requests_total{host=~"$__hosts",code="500"}[$__since_deploy]))'
PERIODS = 2
BAKE_ROUND = ("bake_round", "bake_gates")
ENTRY_ROUND = ("enter_stage", "entry_gates")
"""The activity of one round of a bake or of an entry: the newer one-activity round first, then
the earlier shape (both are counted; a workflow started before the change keeps its shape)."""
LONG_BAKE = "60m"
"""Long enough that no bake ends while a slow wave of 100 is still deploying."""


def host_of(number: int) -> str:
    return f"cell-{number:03d}.gates.internal:80"


def pipeline_yaml(name: str, host: str, bake: str, record: Path) -> str:
    hooks = ", ".join(f"{hook}: ./hooks/hook.sh" for hook in ("stop", "install", "start", "validate"))
    return f"""apiVersion: pipewarden/v1
kind: Pipeline
metadata: {{name: {name}, team: bench}}
build:
  commands: ["mkdir -p dist && cp app.txt dist/"]
  artifact: dist/
alarms:
  errors:
    metric: {{source: prometheus, query: '{ALARM_QUERY}'}}
    threshold: 0.05
    comparison: '>'
    periods: {PERIODS}
stages:
  - name: {STAGE}
    type: prod
    targets: [{{name: cell, hosts: ["{host}"]}}]
    deploy: {{hooks: {{{hooks}}}}}
    alarms: [errors]
    bake:
      duration: {bake}
      datapoints:
        positive: {{source: prometheus, query: '{GOOD}'}}
        negative: {{source: prometheus, query: '{BAD}'}}
        min_positive: 1
        max_negative: 0
    rollback: automatic
# record: {record}
"""


@dataclass
class Repo:
    name: str
    path: Path
    host: str
    record: Path
    version: int = 0

    def commit(self, bake: str) -> str:
        """A new commit on main (the poller watches `release`)."""
        self.version += 1
        (self.path / "pipeline.yaml").write_text(pipeline_yaml(self.name, self.host, bake, self.record))
        (self.path / "app.txt").write_text(f"v{self.version}\n")
        git(self.path, "commit", "-q", "-am", f"v{self.version}")
        return git(self.path, "rev-parse", "HEAD")

    def release(self) -> None:
        """Move `release` to main's head (what `git update-ref` does, without a process)."""
        head = git(self.path, "rev-parse", "HEAD")
        ref = self.path / ".git" / "refs" / "heads" / "release"
        temporary = ref.with_name("release.tmp")
        temporary.write_text(head + "\n")
        os.replace(temporary, ref)


def make_repos(root: Path, count: int) -> list[Repo]:
    repos = []
    for number in range(1, count + 1):
        name = f"gates-{number:03d}"
        path = root / "repos" / name
        path.mkdir(parents=True)
        record = root / "records" / f"{name}.txt"
        record.parent.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.name", "Bench")
        git(path, "config", "user.email", "bench@example.com")
        hook = path / "hooks" / "hook.sh"
        hook.parent.mkdir()
        hook.write_text("#!/bin/sh\n"
                        f'echo "$PIPEWARDEN_EXECUTION $PIPEWARDEN_HOOK $PIPEWARDEN_ROLLBACK $(date +%s.%N)" >> {record}\n')
        hook.chmod(0o755)
        repo = Repo(name, path, host_of(number), record)
        (path / "pipeline.yaml").write_text(pipeline_yaml(name, repo.host, "1s", record))
        (path / "app.txt").write_text("v0\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "v0")
        repos.append(repo)
    return repos


# --------------------------------------------------------------------------- the exporter


class Traffic:
    """The exporter's metrics: one good request per host every second (a live service), a 500 on
    demand, and an error ratio per host."""

    def __init__(self, hosts: Sequence[str]) -> None:
        from prometheus_client import Counter, Gauge

        self.exporter = Exporter()
        self.requests = Counter("pw_requests", "requests", ["host", "code"], registry=self.exporter.registry)
        self.ratio = Gauge("pw_error_ratio", "error ratio", ["host"], registry=self.exporter.registry)
        self.hosts = list(hosts)
        self.bad = dict.fromkeys(self.hosts, 0)
        """The 500s bumped per host so far (the counter's value)."""
        for host in self.hosts:
            self.requests.labels(host, "200").inc(0)
            self.requests.labels(host, "500").inc(0)
            self.ratio.labels(host).set(0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for host in self.hosts:
                self.requests.labels(host, "200").inc()

    def bump_500(self, hosts: Sequence[str]) -> float:
        for host in hosts:
            self.requests.labels(host, "500").inc()
            self.bad[host] += 1
        return time.time()

    def set_ratio(self, hosts: Sequence[str], value: float) -> float:
        for host in hosts:
            self.ratio.labels(host).set(value)
        return time.time()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.exporter.stop()


def prometheus_queries(prometheus: PrometheusServer) -> float:
    """Prometheus's own count of instant-query requests (every status code)."""
    import httpx

    total = 0.0
    for line in httpx.get(prometheus.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def first_sample(prometheus: PrometheusServer, selector: str, after: float, above: float) -> float | None:
    """The timestamp of the first sample of `selector` at or after `after - 2` s whose value is
    above `above` (a range query over the last 10 minutes, read back from Prometheus)."""
    answer = prometheus.query(f"{selector}[10m]")
    for series in answer.get("data", {}).get("result", []):
        for at, value in series.get("values", []):
            if float(at) >= after - 2 and float(value) > above:
                return float(at)
    return None


# --------------------------------------------------------------------------- the store, read-only


class StoreReader:
    """Reads of the engine's SQLite store (WAL: readers never block the server's writes)."""

    def __init__(self, state: Path) -> None:
        self.path = state / "engine.db"

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            yield connection
        finally:
            connection.close()

    def latest(self, pipelines: Sequence[str]) -> dict[str, tuple[str, str, str | None]]:
        """pipeline -> (execution, execution status, status of its latest stage run) of its newest execution."""
        with self._db() as db:
            rows = db.execute(
                "SELECT e.pipeline, e.id, e.status, (SELECT s.status FROM stage_runs s WHERE s.execution = e.id "
                "ORDER BY s.id DESC LIMIT 1) FROM executions e WHERE e.number = (SELECT MAX(number) FROM executions x "
                "WHERE x.pipeline = e.pipeline)").fetchall()
        wanted = set(pipelines)
        return {row[0]: (row[1], row[2], row[3]) for row in rows if row[0] in wanted}

    def first_rollback_hook(self, execution: str) -> float | None:
        with self._db() as db:
            row = db.execute("SELECT MIN(started) FROM hook_runs WHERE execution = ? AND rollback = 1",
                             (execution,)).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    def events(self, execution: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT type, time, data FROM events WHERE execution = ? ORDER BY seq",
                              (execution,)).fetchall()
        return [{"type": r[0], "time": r[1], "data": json.loads(r[2]) if r[2] else {}} for r in rows]

    def bake_rounds(self, executions: Sequence[str]) -> dict[str, str]:
        """execution -> when its latest stage run's `bake_time` gate was last evaluated (a round)."""
        wanted = set(executions)
        with self._db() as db:
            rows = db.execute("SELECT s.execution, g.evaluated FROM gate_evaluations g JOIN stage_runs s "
                              "ON s.id = g.stage_run WHERE g.gate = 'bake_time' AND s.status = 'baking'").fetchall()
        return {row[0]: row[1] for row in rows if row[0] in wanted}

    def alarm_firing(self, pipelines: Sequence[str]) -> dict[str, bool]:
        with self._db() as db:
            rows = db.execute("SELECT pipeline, state FROM alarm_states WHERE stage = ?", (STAGE,)).fetchall()
        wanted = set(pipelines)
        return {row[0]: bool(json.loads(row[1]).get("firing")) for row in rows if row[0] in wanted}


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.25) -> float:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - began


def hook_line_time(record: Path, execution: str) -> float | None:
    """The hook script's own timestamp of the first rollback hook of `execution`."""
    if not record.exists():
        return None
    for line in record.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == execution and parts[2] == "1":
            return float(parts[3])
    return None


# --------------------------------------------------------------------------- the bench


@dataclass
class Bench:
    root: Path
    repos: list[Repo]
    run: EngineRun
    prometheus: PrometheusServer
    traffic: Traffic
    store: StoreReader
    poll: int
    window: float
    results: dict[str, Any] = field(default_factory=dict)

    def names(self, repos: Sequence[Repo]) -> list[str]:
        return [repo.name for repo in repos]

    def wave(self, repos: Sequence[Repo], bake: str, until: Callable[[str, str | None], bool], what: str,
             timeout: float = 1800) -> dict[str, str]:
        """Commit a new version to each repository, release them all at once, and wait until every
        newest execution's (status, stage-run status) satisfies `until`; their ids."""
        before = {name: entry[0] for name, entry in self.store.latest(self.names(repos)).items()}
        for repo in repos:
            repo.commit(bake)
        for repo in repos:
            repo.release()
        began = time.monotonic()

        def ready() -> bool:
            latest = self.store.latest(self.names(repos))
            done = True
            for name in self.names(repos):
                if name not in latest or latest[name][0] == before.get(name):
                    done = False
                elif not until(latest[name][1], latest[name][2]):
                    if latest[name][1] != "running":  # it ended otherwise: waiting on would hang
                        raise SystemExit(f"{latest[name][0]} ended {latest[name][1]} while waiting for {what}")
                    done = False
            return done

        wait_until(what, ready, timeout)
        print(f"    {what}: {time.monotonic() - began:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)
        return {name: entry[0] for name, entry in self.store.latest(self.names(repos)).items()}

    # ----------------------------------------------------------------- (1) cost

    def steady(self, label: str, executions: Sequence[str], activity_types: tuple[str, ...]) -> dict[str, Any]:
        """CPU and Prometheus queries over `window` seconds of a steady state, and the gate
        activities of `executions` that ran in it (from their histories)."""
        pids = {**self.run.pids, "prometheus": self._prometheus_pid()}
        load_before = os.getloadavg()[0]
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        queries_before = prometheus_queries(self.prometheus)
        began = time.time()
        # Every round records its gates' evaluation time: sampled here, it gives the rounds whatever
        # the activities (one per round, or one bake_stage for the whole bake).
        stamps: dict[str, set[str]] = {execution: set() for execution in executions}
        while time.time() < began + self.window:
            for execution, stamp in self.store.bake_rounds(executions).items():
                stamps[execution].add(stamp)
            time.sleep(0.2)
        ended = time.time()
        queries = prometheus_queries(self.prometheus) - queries_before  # /metrics itself is not a query
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        load_after = os.getloadavg()[0]
        activities, by_type = asyncio.run(self._activities(executions, activity_types, began, ended))
        activity_type = "/".join(name for name in activity_types if name in by_type) or activity_types[0]
        span = ended - began
        runs = [a["run_ms"] for a in activities]
        queued = [a["queue_ms"] for a in activities]
        count = len(activities)
        rounds = count / max(1, len(executions))
        out = {
            "label": label, "executions": len(executions), "window_s": round(span, 2), "activity": activity_type,
            "activities": count, "rounds_per_execution": round(rounds, 2),
            "round_interval_s": round(span / rounds, 2) if rounds else None,
            "run_ms_median": round(median(runs), 1) if runs else None,
            "run_ms_p95": round(sorted(runs)[int(0.95 * (len(runs) - 1))], 1) if runs else None,
            "queue_ms_median": round(median(queued), 1) if queued else None,
            "queue_ms_p95": round(sorted(queued)[int(0.95 * (len(queued) - 1))], 1) if queued else None,
            "cpu_s": {name: round(value, 2) for name, value in cpu.items()},
            "cpu_share_of_one_core": {name: round(value / span, 3) for name, value in cpu.items()},
            "server_cpu_ms_per_execution_round": round(cpu["server"] * 1000 / count, 1) if count else None,
            "temporal_cpu_ms_per_execution_round": round(cpu["temporal"] * 1000 / count, 1) if count else None,
            "server_cpu_s_per_round_of_all": round(cpu["server"] / rounds, 3) if rounds else None,
            "activity_run_s_per_round_of_all": round(sum(runs) / 1000 / rounds, 3) if rounds else None,
            "activities_in_window_by_type": by_type,
            "prometheus_queries": int(queries),
            "prometheus_queries_per_round_of_all": round(queries / rounds, 1) if rounds else None,
            "load_1min": [round(load_before, 2), round(load_after, 2)],
        }
        gaps = sorted(b - a for seen in stamps.values() for a, b in itertools.pairwise(sorted(map(parse_iso, seen))))
        if gaps:
            out["store_rounds"] = sum(max(0, len(seen) - 1) for seen in stamps.values())
            out["store_round_gap_s"] = {"median": round(median(gaps), 2),
                                        "p95": round(gaps[int(0.95 * (len(gaps) - 1))], 2), "max": round(gaps[-1], 2)}
            out["server_cpu_ms_per_store_round"] = round(cpu["server"] * 1000 / out["store_rounds"], 1)
            out["temporal_cpu_ms_per_store_round"] = round(cpu["temporal"] * 1000 / out["store_rounds"], 1)
        print(f"    {label}: {count} {activity_type} in {span:.1f} s ({rounds:.1f} rounds each), run "
              f"{out['run_ms_median']} ms median, server CPU {cpu['server']:.1f} s, Temporal {cpu['temporal']:.1f} s, "
              f"{out['prometheus_queries']} Prometheus queries, load {load_after:.2f}; rounds in the store "
              f"{out.get('store_rounds')}, gap {out.get('store_round_gap_s')}, server CPU ms per round "
              f"{out.get('server_cpu_ms_per_store_round')}", flush=True)
        return out

    @contextlib.contextmanager
    def profiled(self, py_spy: Path | None, label: str) -> Iterator[None]:
        """With `py_spy` (the py-spy program), sample the server process while the block runs,
        into WORKDIR/run/py-spy-LABEL.txt (collapsed stacks): only the thread holding the GIL
        (`--gil`: what the one interpreter spends its time on), without line numbers (py-spy 0.4.0
        panics reading them from a running 3.11 process with `--nonblocking`)."""
        if py_spy is None:
            yield
            return
        out = self.root / f"py-spy-{label}.txt"
        spy = subprocess.Popen([str(py_spy), "record", "--pid", str(self.run.pids["server"]), "--format", "raw",
                                "--rate", "100", "--gil", "--nolineno", "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=(self.root / f"py-spy-{label}.log").open("wb"),
                               start_new_session=True)
        try:
            yield
        finally:
            os.killpg(spy.pid, signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(spy.pid, signal.SIGKILL)
                spy.wait()
            print(f"    py-spy samples of the server: {out}", flush=True)

    def _prometheus_pid(self) -> int:
        assert self.prometheus.process is not None
        # setpriv execs prometheus in place: the process group leader is prometheus itself
        return self.prometheus.process.pid

    async def _activities(self, executions: Sequence[str], activity_types: tuple[str, ...], began: float,
                          ended: float) -> tuple[list[dict[str, float]], dict[str, int]]:
        """The `activity_types` activities (a round's one activity) of `executions` that started in [began, ended): run and
        queued ms; and how many activities of each type started in it (what else a round costs)."""
        from temporalio.api.enums.v1 import EventType
        from temporalio.client import Client

        client = await Client.connect(self.run.address)
        out: list[dict[str, float]] = []
        by_type: dict[str, int] = {}
        semaphore = asyncio.Semaphore(8)

        async def one(execution: str) -> None:
            async with semaphore:
                history = await client.get_workflow_handle(execution).fetch_history()
            scheduled: dict[int, dict[str, float]] = {}
            for event in history.events:
                when = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    name = event.activity_task_scheduled_event_attributes.activity_type.name
                    if began <= when < ended:
                        by_type[name] = by_type.get(name, 0) + 1
                    if name in activity_types:
                        scheduled[event.event_id] = {"scheduled": when}
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    slot = scheduled.get(event.activity_task_started_event_attributes.scheduled_event_id)
                    if slot is not None:
                        slot["started"] = when
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    slot = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
                    if slot is not None:
                        slot["closed"] = when
            for slot in scheduled.values():
                if "closed" in slot and "started" in slot and began <= slot["started"] < ended:
                    out.append({"run_ms": (slot["closed"] - slot["started"]) * 1000,
                                "queue_ms": (slot["started"] - slot["scheduled"]) * 1000})

        await asyncio.gather(*(one(execution) for execution in executions))
        return out, by_type

    # ----------------------------------------------------------------- (2) react

    async def _temporal_steps(self, rows: list[dict[str, Any]]) -> None:
        """From each execution's history, how the way from the failed round to the rollback's
        first hook splits in Temporal: the bake activity's completion after the round, the
        workflow task that schedules the rollback (queued, running), the rollback activity queued
        before a worker starts it, and from then to the hook (its plan, status, lease). None of
        these when the bake activity rolled back itself (patch bake-rolls-back): the row says
        `rolled_back_in_bake`."""
        from temporalio.api.enums.v1 import EventType
        from temporalio.client import Client

        client = await Client.connect(self.run.address)
        semaphore = asyncio.Semaphore(8)
        kinds = {EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
                 EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED: "wft_scheduled",
                 EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "wft_started",
                 EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "wft_completed"}

        async def one(row: dict[str, Any]) -> None:
            async with semaphore:
                history = await client.get_workflow_handle(row["execution"]).fetch_history()
            seen: dict[str, float] = {}
            rollback: dict[int, float] = {}
            for event in history.events:
                when = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    if event.activity_task_scheduled_event_attributes.activity_type.name in ("roll_back_stage",
                                                                                             "plan_rollback"):
                        rollback.setdefault(event.event_id, when)
                        seen.setdefault("rollback_scheduled", when)
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    if event.activity_task_started_event_attributes.scheduled_event_id in rollback:
                        seen.setdefault("rollback_started_by_worker", when)
                elif event.event_type in kinds and "rollback_scheduled" not in seen:
                    seen[kinds[event.event_type]] = when  # the last ones before the rollback
            if "rollback_scheduled" not in seen:  # rolled back inside the bake activity (bake-rolls-back)
                row["rolled_back_in_bake"] = True
                return
            steps = {"observed_to_bake_completed_s": ("observed", "completed"),
                     "bake_completed_to_wft_started_s": ("completed", "wft_started"),
                     "wft_started_to_completed_s": ("wft_started", "wft_completed"),
                     "rollback_queued_s": ("rollback_scheduled", "rollback_started_by_worker"),
                     "rollback_activity_to_hook_s": ("rollback_started_by_worker", "hook_store")}
            times = {**seen, "observed": row.get("observed"), "hook_store": row.get("hook_store")}
            for key, (a, b) in steps.items():
                if times.get(a) is not None and times.get(b) is not None:
                    row[key] = times[b] - times[a]

        await asyncio.gather(*(one(row) for row in rows))

    def react(self, kind: str, repos: Sequence[Repo], executions: dict[str, str]) -> list[dict[str, Any]]:
        """Trigger `kind` (datapoints: one 500 per host; alarm: the error ratio over the threshold)
        on every host of `repos` at once, wait for their executions to end, and time each one."""
        hosts = [repo.host for repo in repos]
        if kind == "datapoints":
            before = {host: float(self.traffic.bad[host]) for host in hosts}
            triggered = self.traffic.bump_500(hosts)
        else:
            before = dict.fromkeys(hosts, 0.05)
            triggered = self.traffic.set_ratio(hosts, 1.0)
        names = self.names(repos)

        def ended() -> bool:
            latest = self.store.latest(names)
            return all(latest[name][1] != "running" for name in names)

        wait_until(f"{len(repos)} rollbacks ({kind})", ended, 600)
        rows = []
        for repo in repos:
            execution = executions[repo.name]
            if kind == "datapoints":
                selector = f'pw_requests_total{{host="{repo.host}",code="500"}}'
            else:
                selector = f'pw_error_ratio{{host="{repo.host}"}}'
            visible = first_sample(self.prometheus, selector, triggered, before[repo.host])
            hook_store = self.store.first_rollback_hook(execution)
            hook_script = hook_line_time(repo.record, execution)
            events = self.store.events(execution)
            failed = next((e for e in events if e["type"] == "gate" and e["data"].get("result") == "fail"), None)
            started = next((e for e in events if e["type"] == "rollback_started"), None)
            finished = next((e for e in events if e["type"] == "execution_finished"), None)
            observed = parse_iso(failed["data"]["inputs"]["now"]) if failed else None
            fired = None
            if failed and kind == "alarm":
                state = failed["data"]["inputs"].get("alarms", {}).get("errors") or {}
                fired = parse_iso(state["fired"]) if state.get("fired") else None
            row: dict[str, Any] = {
                "pipeline": repo.name, "execution": execution, "status": finished["data"]["status"] if finished else None,
                "trigger": started["data"]["trigger"] if started else None,
                "triggered": triggered, "visible": visible, "hook_store": hook_store, "hook_script": hook_script,
                "observed": observed, "alarm_fired": fired,
                "rollback_started": parse_iso(started["time"]) if started else None,
            }
            if visible is not None and hook_store is not None:
                row["react_s"] = hook_store - visible
                row["react_script_s"] = None if hook_script is None else hook_script - visible
                row["from_trigger_s"] = hook_store - triggered
                row["scrape_after_trigger_s"] = visible - triggered
                if kind == "alarm":
                    row["react_from_completing_breach_s"] = hook_store - (visible + (PERIODS - 1) * self.poll)
                if observed is not None:
                    row["visible_to_observed_s"] = observed - visible
                if observed is not None and row["rollback_started"] is not None:
                    row["observed_to_rollback_started_s"] = row["rollback_started"] - observed
                if row["rollback_started"] is not None:
                    row["rollback_started_to_hook_s"] = hook_store - row["rollback_started"]
                if fired is not None:
                    row["visible_to_fired_s"] = fired - visible
            rows.append(row)
        asyncio.run(self._temporal_steps(rows))
        if kind == "alarm":
            self.traffic.set_ratio(hosts, 0.0)
            wait_until("the alarms to stop firing", lambda: not any(self.store.alarm_firing(names).values()), 120)
        return rows


def summarize(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [row[key] for row in rows if row.get(key) is not None]
    if not values:
        return {"median": None, "max": None, "min": None, "n": 0}
    return {"median": round(median(values), 3), "max": round(max(values), 3), "min": round(min(values), 3),
            "n": len(values)}


REACT_KEYS = ("react_s", "react_from_completing_breach_s", "react_script_s", "from_trigger_s", "scrape_after_trigger_s",
              "visible_to_observed_s", "visible_to_fired_s", "observed_to_rollback_started_s",
              "rollback_started_to_hook_s", "observed_to_bake_completed_s", "bake_completed_to_wft_started_s",
              "wft_started_to_completed_s", "rollback_queued_s", "rollback_activity_to_hook_s")


def react_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: summarize(rows, key) for key in REACT_KEYS if any(row.get(key) is not None for row in rows)} | {
        "statuses": {status: sum(1 for r in rows if r["status"] == status) for status in {r["status"] for r in rows}},
        "rolled_back_in_bake": sum(1 for r in rows if r.get("rolled_back_in_bake")),
        "triggers": sorted({str(r["trigger"]) for r in rows})}


def measure(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    """Every number goes into `results` as soon as it is measured (kept when a later part fails)."""
    from pipewarden.engine.server import TEMPORAL_SQLITE_PRAGMAS

    root = workdir / "run"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    print(f"  {args.count} repositories ...", flush=True)
    repos = make_repos(root, args.count)
    traffic = Traffic([repo.host for repo in repos])
    prometheus = PrometheusServer(root / "prometheus", targets=[traffic.exporter.target],
                                  scrape_interval=f"{args.scrape}s")
    run = None
    try:
        prometheus.start()
        wait_until("Prometheus's first scrape", lambda: bool(prometheus.query("sum(pw_error_ratio)")["data"]["result"]),
                   60)
        config = root / "engine.yaml"
        config.write_text("apiVersion: pipewarden/v1\nkind: EngineConfig\n"
                          f"prometheus: {{url: \"{prometheus.url}\"}}\npoll: {{git: 1s, gates: {args.poll_gates}s}}\n"
                          "pipelines:\n" + "".join(
                              f"  - {{repo: {repo.path}, branch: release, pipeline: pipeline.yaml, name: {repo.name}}}\n"
                              for repo in repos))
        run = EngineRun(root, config, tuple(TEMPORAL_SQLITE_PRAGMAS)).start()
        bench = Bench(root, repos, run, prometheus, traffic, StoreReader(run.state), args.poll_gates, args.window)
        one = repos[:1]
        baking = ("running", "baking")
        if args.many_only:
            many_only(args, bench, repos, results)
            return
        print("  1 execution:", flush=True)
        bench.wave(one, "1s", lambda status, _: status == "succeeded", "v1 released and succeeded")
        react_one: dict[str, list[dict[str, Any]]] = {"datapoints": [], "alarm": []}
        for trial in range(args.trials):
            for kind in ("datapoints", "alarm"):
                ids = bench.wave(one, LONG_BAKE, lambda status, stage: (status, stage) == baking, "baking")
                if trial == 0 and kind == "datapoints":
                    results["cost_1_baking"] = bench.steady("1 execution baking", list(ids.values()), BAKE_ROUND)
                time.sleep(args.poll_gates)  # some rounds of the bake first, as a real canary has
                rows = bench.react(kind, one, ids)
                react_one[kind] += rows
                row = rows[0]
                print(f"    {kind} trial {trial + 1}: visible -> rollback hook {row.get('react_s', float('nan')):.2f} s "
                      f"({row['status']}, trigger {row['trigger']})", flush=True)
        results["react_1"] = {kind: {"rows": rows, "summary": react_summary(rows)} for kind, rows in react_one.items()}

        print(f"  {len(repos)} executions:", flush=True)
        others = repos[1:]
        if others:
            bench.wave(others, "1s", lambda status, _: status == "succeeded", f"v1 of {len(others)} released and succeeded")
        time.sleep(2 * args.poll_gates)
        results["cost_idle"] = bench.steady(f"{len(repos)} pipelines, no execution (poller, alarm evaluator)", [],
                                            BAKE_ROUND)
        # at the entry: the alarm fires on every host, then a new version of every pipeline arrives
        names = bench.names(repos)
        traffic.set_ratio([repo.host for repo in repos], 1.0)
        wait_until("every alarm firing", lambda: sum(bench.store.alarm_firing(names).values()) == len(repos), 120)
        ids = bench.wave(repos, LONG_BAKE, lambda status, stage: (status, stage) == ("running", "waiting"),
                         f"{len(repos)} waiting at the entry")
        time.sleep(args.poll_gates)
        results["cost_entry"] = bench.steady(f"{len(repos)} executions waiting at the entry (alarm firing)",
                                             list(ids.values()), ENTRY_ROUND)
        traffic.set_ratio([repo.host for repo in repos], 0.0)
        began = time.monotonic()
        wait_until(f"{len(repos)} baking", lambda: all(
            bench.store.latest(names)[n][1:] == baking for n in names), 1800)
        print(f"    {len(repos)} deployed and baking after the alarm stopped: {time.monotonic() - began:.1f} s", flush=True)
        many_baking(args, bench, repos, ids, results)
        run.stop()
        results["evaluator_in_process"] = micro_evaluator(run.state, prometheus.url, args.poll_gates, 10)
        print(f"  the alarm evaluator in this process, {len(repos)} alarms: {results['evaluator_in_process']}",
              flush=True)
    finally:
        if run is not None:
            run.stop()
        prometheus.stop()
        traffic.stop()


def many_only(args: argparse.Namespace, bench: Bench, repos: list[Repo], results: dict[str, Any]) -> None:
    """`--many-only`: the `--count` baking executions' steady state and both reacts, without the
    1-execution trials and the entry part (a faster loop while working on the 100-execution path);
    with `--py-spy`, the server's samples over the steady state and each react."""
    baking = ("running", "baking")
    bench.wave(repos, "1s", lambda status, _: status == "succeeded", f"v1 of {len(repos)} released and succeeded")
    ids = bench.wave(repos, LONG_BAKE, lambda status, stage: (status, stage) == baking, f"{len(repos)} baking")
    many_baking(args, bench, repos, ids, results)


def many_baking(args: argparse.Namespace, bench: Bench, repos: list[Repo], ids: dict[str, str],
                results: dict[str, Any]) -> None:
    """With `ids` (pipeline -> execution) baking: their steady state, then the react to one
    negative datapoint on every host at once, then (a new wave baking) to the alarm on every host."""
    time.sleep(2 * args.poll_gates)
    with bench.profiled(args.py_spy, "baking"):
        results["cost_baking"] = bench.steady(f"{len(repos)} executions baking", list(ids.values()), BAKE_ROUND)
    with bench.profiled(args.py_spy, "react-datapoints"):
        rows = bench.react("datapoints", repos, ids)
    results["react_many_datapoints"] = {"rows": rows, "summary": react_summary(rows)}
    print(f"    datapoints, {len(repos)} at once: slowest {results['react_many_datapoints']['summary']['react_s']}",
          flush=True)
    ids = bench.wave(repos, LONG_BAKE, lambda status, stage: (status, stage) == ("running", "baking"),
                     f"{len(repos)} baking")
    time.sleep(2 * args.poll_gates)
    with bench.profiled(args.py_spy, "react-alarm"):
        rows = bench.react("alarm", repos, ids)
    results["react_many_alarm"] = {"rows": rows, "summary": react_summary(rows)}
    print(f"    alarm, {len(repos)} at once: slowest {results['react_many_alarm']['summary']['react_s']}", flush=True)


def micro_evaluator(state: Path, prometheus_url: str, poll: int, rounds: int) -> dict[str, Any]:
    """The alarm evaluator's rounds in this process (engine/alarms.py, as the server runs it: the
    engine's sources, 8 readers) over a copy of a finished run's store: wall and CPU seconds of
    this process per round, and the Prometheus queries. What part of the idle server's CPU is the
    evaluator's (the rest: the poller, housekeeping, synthetics, the SDK's pollers)."""
    from pipewarden.engine.activities.engine import engine_sources
    from pipewarden.engine.alarms import AlarmEvaluator
    from pipewarden.engine.store import EngineStore

    scratch = state.parent / "evaluator-micro"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    for name in ("engine.db", "engine.db-wal", "engine.db-shm"):
        if (state / name).exists():
            shutil.copy2(state / name, scratch / name)
    store = EngineStore.for_state_dir(scratch)
    walls: list[float] = []
    cpus: list[float] = []
    stages = 0
    try:
        evaluator = AlarmEvaluator(store, engine_sources(store, prometheus_url), None, poll_seconds=poll)
        evaluator.round(datetime.now(UTC))  # warm: connections, imports
        for _ in range(rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            stages = evaluator.round(datetime.now(UTC))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"alarms_per_round": stages, "rounds": rounds, "wall_s": [round(w, 3) for w in walls],
            "cpu_s": [round(c, 3) for c in cpus], "wall_s_median": round(median(walls), 3),
            "cpu_s_median": round(median(cpus), 3), "load_1min": round(os.getloadavg()[0], 2)}


# --------------------------------------------------------------------------- report


def report(results: dict[str, Any], poll: int) -> None:
    target = poll + 2
    print(f"\n(1) One gate round (poll.gates {poll} s): per steady state\n")
    print("| state | gate activity | rounds / execution / s | activity run ms median (p95) | queued ms median (p95) "
          "| server CPU ms per execution-round | Temporal CPU ms per execution-round | server CPU s per round of all "
          "| activity run s per round of all "
          "| Prometheus queries per round of all | CPU share of one core: server / Temporal / Prometheus | load "
          "| round gap in the store s median / p95 / max | server / Temporal CPU ms per store round |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|")
    idle = results.get("cost_idle")
    for key in ("cost_idle", "cost_1_baking", "cost_entry", "cost_baking"):
        c = results.get(key)
        if not c:
            continue
        share = c["cpu_share_of_one_core"]
        per_s = c["rounds_per_execution"] / c["window_s"]
        if not c["activities"] and c.get("store_rounds") and c["executions"]:  # bake_stage: no activity per round
            per_s = c["store_rounds"] / c["executions"] / c["window_s"]
        gap = c.get("store_round_gap_s") or {}
        store = (f"{gap.get('median')} / {gap.get('p95')} / {gap.get('max')} | "
                 f"{c.get('server_cpu_ms_per_store_round')} / {c.get('temporal_cpu_ms_per_store_round')}")
        print(f"| {c['label']} | {c['activity']} | {per_s:.2f} | {c['run_ms_median']} ({c['run_ms_p95']}) | "
              f"{c['queue_ms_median']} ({c['queue_ms_p95']}) | {c['server_cpu_ms_per_execution_round']} | "
              f"{c['temporal_cpu_ms_per_execution_round']} | {c['server_cpu_s_per_round_of_all']} | "
              f"{c['activity_run_s_per_round_of_all']} | "
              f"{c['prometheus_queries_per_round_of_all']} | {share['server']} / {share['temporal']} / "
              f"{share['prometheus']} | {c['load_1min'][0]}-{c['load_1min'][1]} | {store} |")
    for key in ("cost_1_baking", "cost_entry", "cost_baking"):
        c = results.get(key)
        if c:
            print(f"  {c['label']}: activities started in the window by type {c['activities_in_window_by_type']}")
            if idle and c["activities"] and key != "cost_1_baking":
                net = (c["cpu_share_of_one_core"]["server"] - idle["cpu_share_of_one_core"]["server"]) * c["window_s"]
                c["server_cpu_ms_per_execution_round_net_of_idle"] = round(net * 1000 / c["activities"], 1)
                print(f"    server CPU per execution-round net of the idle server's: "
                      f"{c['server_cpu_ms_per_execution_round_net_of_idle']} ms")
    print(f"\n(2) Time to react, seconds from visible in Prometheus to the first rollback hook (target {target} s)\n")
    print("| trigger | executions | visible -> hook (median / max) | from the completing breach (median / max) "
          "| hook script's clock (max) | bump -> scrape | visible -> gate round saw it | round -> rollback_started "
          "| rollback_started -> hook | met |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    sets = []
    for kind in ("datapoints", "alarm"):
        one = results.get("react_1", {}).get(kind)
        if one:
            sets.append((kind, f"1 (x{len(one['rows'])} trials)", one["summary"]))
    for kind, key in (("datapoints", "react_many_datapoints"), ("alarm", "react_many_alarm")):
        many = results.get(key)
        if many:
            sets.append((kind, str(len(many["rows"])), many["summary"]))
    for kind, label, s in sets:
        def mm(name: str, s: dict[str, Any] = s) -> str:
            v = s.get(name)
            return "-" if not v or v["median"] is None else f"{v['median']:.2f} / {v['max']:.2f}"
        judged = s.get("react_from_completing_breach_s") if kind == "alarm" else s.get("react_s")
        met = "-" if not judged or judged["max"] is None else ("yes" if judged["max"] <= target else "NO")
        script = s.get("react_script_s") or {}
        print(f"| {kind} | {label} | {mm('react_s')} | {mm('react_from_completing_breach_s')} | "
              f"{script.get('max', '-')} | {mm('scrape_after_trigger_s')} | {mm('visible_to_observed_s')} | "
              f"{mm('observed_to_rollback_started_s')} | {mm('rollback_started_to_hook_s')} | {met} |")
        print(f"|  | statuses {s['statuses']}, triggers {s['triggers']} | | | | | | | | |")
        split = ", ".join(f"{name} {mm(name)}" for name in REACT_KEYS[-5:] if s.get(name))
        if split:
            print(f"|  | in Temporal (median / max): {split} | | | | | | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 executions, 1 trial, 8 s windows")
    parser.add_argument("--count", type=int, help="executions of the many-executions parts (default 100)")
    parser.add_argument("--poll-gates", type=int, default=2, help="poll.gates in seconds (default 2)")
    parser.add_argument("--scrape", type=int, default=1, help="Prometheus's scrape interval in seconds (default 1)")
    parser.add_argument("--trials", type=int, help="react trials with 1 execution, per trigger (default 3)")
    parser.add_argument("--window", type=float, help="seconds of each steady state (default 20)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pipewarden-bench/gates"))
    parser.add_argument("--json", type=Path, help="where to write the results (default WORKDIR/gates-results.json)")
    parser.add_argument("--wait-calm", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to drop below 1.5")
    parser.add_argument("--evaluator-micro", type=Path, metavar="STATE_DIR",
                        help="only time the alarm evaluator's rounds over a copy of this finished run's store, "
                             "with a Prometheus on the run's TSDB")
    parser.add_argument("--many-only", action="store_true",
                        help="only the --count baking executions: their steady state and both reacts")
    parser.add_argument("--py-spy", type=Path, metavar="PROGRAM",
                        help="sample the server with this py-spy while the --count executions bake and react")
    args = parser.parse_args()
    if args.evaluator_micro:
        folder = args.evaluator_micro.resolve().parent / "prometheus"
        prometheus = PrometheusServer(folder, storage=folder / "data")
        try:
            prometheus.start()
            print(json.dumps(micro_evaluator(args.evaluator_micro.resolve(), prometheus.url, args.poll_gates, 10)))
        finally:
            prometheus.stop()
        return
    reason = missing()
    if reason is not None:
        raise SystemExit(reason)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too: what was measured is written, everything is stopped

    signal.signal(signal.SIGTERM, interrupted)
    args.count = args.count or (5 if args.quick else 100)
    args.trials = args.trials or (1 if args.quick else 3)
    args.window = args.window or (8.0 if args.quick else 20.0)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    output = args.json or workdir / "gates-results.json"
    calm = wait_calm(args.wait_calm) if args.wait_calm else [os.getloadavg()[0]]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "uptime_at_start": uptime, "load_while_waiting_for_calm": [round(x, 2) for x in calm]},
        "tree": tree_label(), "started": datetime.now(UTC).isoformat(),
        "settings": {"count": args.count, "poll_gates_s": args.poll_gates, "scrape_s": args.scrape,
                     "trials": args.trials, "window_s": args.window, "periods": PERIODS},
        "prometheus": subprocess.run(["prometheus", "--version"], capture_output=True, text=True,
                                     check=False).stdout.splitlines()[:1],
    }
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; {uptime}; "
          f"pipewarden from {results['tree']['pipewarden']} ({results['tree']['commit']})", flush=True)
    samples: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # `uptime` every 30 s while the benchmark runs
        while not stop.wait(30):
            samples.append(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        measure(args, workdir, results)
    finally:
        stop.set()
        watcher.join()
        results["machine"]["uptime_during"] = samples
        results["machine"]["uptime_at_end"] = subprocess.run(["uptime"], capture_output=True, text=True,
                                                             check=False).stdout.strip()
        results["finished"] = datetime.now(UTC).isoformat()
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1, default=str))
        print(f"\nJSON: {output}")
    report(results, args.poll_gates)
    output.write_text(json.dumps(results, indent=1, default=str))  # with what the report derived
    print(f"\nuptime at start: {uptime}\nuptime during: " + "; ".join(s.split("load average:")[-1].strip()
                                                                  for s in samples))


if __name__ == "__main__":
    main()
