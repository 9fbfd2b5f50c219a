"""Issue 14's acceptance, end to end: `pipewarden server` as a real process (its embedded Temporal,
poller, alarm evaluator) with a real Prometheus (Debian's) scraping a prometheus-client exporter
this test runs, real git repositories and real hook scripts; driven only through git commits, the
CLI and the HTTP API. One server for four pipelines (poll 1 s, scrape 1 s):

- `canary`: its canary waits `insufficient data` (both counts in `status`) until enough good
  requests of its own hosts arrive, then passes; the next version bakes, a single 5xx
  (`max_negative: 0`) fails the bake at once and the stage rolls back to v1 (trigger
  `datapoints`), the rollback hooks running v1 again;
- `alarmed`: an alarm (`periods: 2`) that starts breaching mid-bake fires and rolls back
  (trigger `alarm`);
- `windowed`: a stage whose window (Europe/Berlin) is closed waits with `until` its next opening in
  `status`, then proceeds after `pipewarden override window`;
- `blocked`: while v1 awaits promotion in beta, a git blocklist entry (with `fixed_by`) is added to
  the org config: v1 is stopped at prod's entry (`blocked_commit`); the fix, merged to the branch,
  goes through both stages.

Every decision is a `gate` event with its inputs (`pipewarden events`), and the audit chain
verifies. The gauges stand for "requests since the deploy" so that the counts are exact
(`increase()` extrapolates). Prometheus's first scrape takes about 6 s (its scrape manager's
tick), so the exporter and Prometheus start before the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from engine_helpers import require_temporal
from prometheus_helpers import Exporter, PrometheusServer
from prometheus_helpers import wait_for as wait_until
from server_helpers import ServerProcess
from workflow_helpers import git, write

from pipewarden.engine.domain.ids import format_time, parse_time

CANARY = ("127.0.0.1:9511", "127.0.0.1:9512")
ALARMED = ("127.0.0.1:9521",)
WINDOWED = ("127.0.0.1:9531",)
BLOCKED_BETA, BLOCKED_PROD = ("127.0.0.1:9541",), ("127.0.0.1:9542",)
GOOD = 'sum(pw_good{host=~"$__hosts"})'
BAD = 'sum(pw_bad{host=~"$__hosts"})'
ERRORS = 'sum(pw_errors{host=~"$__hosts"})'
BERLIN = ZoneInfo("Europe/Berlin")
HOOKS = "{stop: ./hooks/hook.sh, install: ./hooks/hook.sh, start: ./hooks/hook.sh, validate: ./hooks/hook.sh}"
ORG = """apiVersion: pipewarden/v1
kind: OrgConfig
metadata: {name: acme, owners: [ops]}
teams: [demo]
"""


def datapoints_bake(duration: str) -> str:
    return (f"{{duration: {duration}, datapoints: {{positive: {{source: prometheus, query: '{GOOD}'}}, "
            f"negative: {{source: prometheus, query: '{BAD}'}}, min_positive: 5, max_negative: 0}}}}")


def stage(name: str, kind: str, hosts: tuple[str, ...], bake: str, extra: str = "") -> str:
    listed = ", ".join(f'"{host}"' for host in hosts)
    return (f"  - name: {name}\n    type: {kind}\n    targets: [{{name: {name}-cell, hosts: [{listed}]}}]\n"
            f"    deploy:\n      hooks: {HOOKS}\n    bake: {bake}\n    rollback: automatic\n{extra}")


def pipeline(name: str, stages: str, top: str = "") -> str:
    return (f"apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {{name: {name}, team: demo}}\n"
            'build:\n  commands: ["mkdir -p dist && cp app.txt dist/"]\n  artifact: dist/\n'
            f"{top}stages:\n{stages}")


def canary_yaml(bake: str) -> str:
    return pipeline("canary", stage("prod-canary", "prod", CANARY, bake))


def alarmed_yaml(duration: str) -> str:
    top = (f"alarms:\n  errors:\n    metric: {{source: prometheus, query: '{ERRORS}'}}\n    threshold: 0\n"
           "    comparison: '>'\n    periods: 2\n")
    return pipeline("alarmed", stage("prod-canary", "prod", ALARMED, f"{{duration: {duration}}}",
                                     "    alarms: [errors]\n"), top)


def windowed_yaml(opens: datetime) -> str:
    closes = opens + timedelta(minutes=30)
    top = (f"windows:\n  office:\n    timezone: Europe/Berlin\n    days: [mon, tue, wed, thu, fri, sat, sun]\n"
           f'    start: "{opens:%H:%M}"\n    end: "{closes:%H:%M}"\n')
    return pipeline("windowed", stage("prod", "prod", WINDOWED, "{duration: 1s}", "    window: office\n"), top)


def blocked_yaml() -> str:
    return pipeline("blocked", stage("beta", "preprod", BLOCKED_BETA, "{duration: 1s}", "    promotion: manual\n")
                    + stage("prod", "prod", BLOCKED_PROD, "{duration: 1s}"))


def make_repo(path: Path, text: str, record: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Dev")
    git(path, "config", "user.email", "dev@example.com")
    write(path / "pipeline.yaml", text)
    write(path / "app.txt", "v1\n")
    write(path / "hooks" / "hook.sh", "#!/bin/sh\necho \"$PIPEWARDEN_STAGE $PIPEWARDEN_HOST $PIPEWARDEN_HOOK "
          f"$PIPEWARDEN_ARTIFACT rollback=$PIPEWARDEN_ROLLBACK\" >> {record}\n", executable=True)
    commit(path, "v1")
    return path


def commit(repo: Path, message: str, *, text: str | None = None) -> str:
    if text is not None:
        write(repo / "pipeline.yaml", text)
    write(repo / "app.txt", f"{message}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Engine:
    """The running server, the exporter's gauges, the repositories and what their hooks recorded."""

    state: Path
    root: Path
    org: Path
    prometheus: PrometheusServer
    gauges: dict[str, Any]
    repos: dict[str, Path]
    opens: datetime

    def cli(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "pipewarden", *args, "--state-dir", str(self.state)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def status(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cli("status", name, "--format", "json"))
        return data

    def events(self, name: str) -> list[dict[str, Any]]:
        text = self.cli("events", "--pipeline", name, "--format", "jsonl")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def api(self, path: str, **params: Any) -> Any:
        """A GET of the running server's API (for waiting: each CLI call costs a Python start)."""
        url = json.loads((self.state / "server.json").read_text())["url"]
        token = (self.state / "admin-token").read_text().strip()
        answer = httpx.get(f"{url}/api/v1/{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                           timeout=30)
        answer.raise_for_status()
        return answer.json()

    def execution(self, ident: str) -> dict[str, Any] | None:
        return next((e for e in self.api("executions", limit=200)["executions"] if e["id"] == ident), None)

    def wait_status(self, ident: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        """The execution once its status is one of `statuses` (executions list)."""
        def check() -> dict[str, Any] | None:
            found = self.execution(ident)
            return found if found and found["status"] in statuses else None

        found = wait(f"{ident} {'/'.join(statuses)}", check, timeout)
        assert isinstance(found, dict)
        return found

    def stage_of(self, name: str, stage: str) -> dict[str, Any]:
        """The stage as `GET /pipelines/NAME` shows it; {} before the poller's first round has
        registered the pipeline (404) or its definition."""
        try:
            data = self.api(f"pipelines/{name}")
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 404:
                return {}
            raise
        return dict(next((s for s in data["stages"] if s["name"] == stage), {}))

    def occupant(self, name: str, stage: str) -> tuple[str, str] | None:
        """(id, status) of the execution the stage shows (`execution` of the status), or None."""
        shown = self.stage_of(name, stage).get("execution")
        return None if not shown else (shown["id"], shown["status"])

    def records(self, name: str) -> list[str]:
        record = self.root / f"{name}.record"
        return record.read_text().splitlines() if record.exists() else []


def wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.2)


def gate_events(events: list[dict[str, Any]], execution: str, gate: str, stage: str | None = None) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "gate" and e["execution"] == execution and e["data"]["gate"] == gate
            and (stage is None or e["stage"] == stage)]


def gate_result(engine: Engine, name: str, stage: str, ident: str, status: str, gate: str) -> str | None:
    """The result of `gate` of `ident` while it occupies `stage` with `status`, as the API shows it."""
    shown = engine.stage_of(name, stage).get("execution")
    if not shown or (shown["id"], shown["status"]) != (ident, status):
        return None
    return next((str(g["result"]) for g in shown["gates"] if g["gate"] == gate), None)


def waiting_gate(engine: Engine, name: str, stage: str, ident: str, gate: str, code: str) -> dict[str, Any] | None:
    """The gate of `ident` at `stage` as `GET /pipelines/NAME` shows it, once it waits with `code`."""
    shown = engine.stage_of(name, stage)
    for slot in (shown.get("execution"), shown.get("next")):
        if slot and slot["id"] == ident:
            found = next((g for g in slot["gates"] if g["gate"] == gate), None)
            if found and (found["result"], found["code"]) == ("wait", code):
                return dict(found)
    return None


@pytest.fixture(scope="module")
def engine(prometheus_servers: Callable[..., PrometheusServer],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    require_temporal()
    from prometheus_client import Gauge

    root = tmp_path_factory.mktemp("release-gates")
    exporter = Exporter()
    try:
        gauges = {name: Gauge(name, name, ["host"], registry=exporter.registry)
                  for name in ("pw_good", "pw_bad", "pw_errors")}
        for host in (*CANARY, *ALARMED):
            gauges["pw_good"].labels(host).set(1)
            gauges["pw_bad"].labels(host).set(0)
            gauges["pw_errors"].labels(host).set(0)
        prometheus = prometheus_servers(targets=[exporter.target], scrape_interval="1s")
        assert wait_until(lambda: prometheus.query("sum(pw_good)")["data"]["result"], timeout=30), \
            "Prometheus did not scrape the exporter within 30 s"
        # The window opens in 9 to 10 minutes (Berlin time, whole minutes): v1 of `windowed` waits.
        opens = (datetime.now(UTC) + timedelta(minutes=10)).astimezone(BERLIN).replace(second=0, microsecond=0)
        repos = {
            "canary": make_repo(root / "canary", canary_yaml(datapoints_bake("1s")), root / "canary.record"),
            "alarmed": make_repo(root / "alarmed", alarmed_yaml("1s"), root / "alarmed.record"),
            "windowed": make_repo(root / "windowed", windowed_yaml(opens), root / "windowed.record"),
            "blocked": make_repo(root / "blocked", blocked_yaml(), root / "blocked.record"),
        }
        org = root / "org"
        write(org / "acme.yaml", ORG)
        config = root / "engine.yaml"
        write(config, "apiVersion: pipewarden/v1\nkind: EngineConfig\norg_config: org\n"
              f"prometheus: {{url: \"{prometheus.url}\"}}\npoll: {{git: 1s, gates: 1s}}\npipelines:\n"
              + "".join(f"  - {{repo: {repo}}}\n" for repo in repos.values()))
        with ServerProcess(root / "state", "--config", str(config)) as server:
            yield Engine(server.state_dir, root, org, prometheus, gauges, repos, opens)
            assert server.stop() == 0
    finally:
        exporter.stop()


def test_a_canary_waits_for_enough_good_traffic_then_one_5xx_rolls_the_next_version_back(engine: Engine) -> None:
    good, bad = engine.gauges["pw_good"], engine.gauges["pw_bad"]
    # v1: 2 good requests of 5 needed: it waits, and `status` says why with both counts.
    gate = wait("canary-1 to wait for datapoints", lambda: waiting_gate(
        engine, "canary", "prod-canary", "canary-1", "datapoints", "insufficient_data"))
    assert gate["reason"] == "2 positive of 5, 0 negative of at most 0: 3 more positive needed"
    shown = next(s for s in engine.status("canary")["stages"] if s["name"] == "prod-canary")
    assert shown["execution"]["id"] == "canary-1" and shown["execution"]["status"] == "baking"
    assert {"gate": "datapoints", "result": "wait", "code": "insufficient_data", "reason": gate["reason"],
            "until": None} in shown["execution"]["gates"]
    for host in CANARY:
        good.labels(host).set(3)
    engine.wait_status("canary-1", "succeeded", timeout=30)
    v1 = git(engine.repos["canary"], "rev-parse", "HEAD")[:12]

    # v2 bakes for a minute; one bad request on one host fails it at once and rolls it back.
    commit(engine.repos["canary"], "v2", text=canary_yaml(datapoints_bake("60s")))
    # its first round (enough good traffic, no bad) has passed the datapoints; bake_time holds it
    wait("canary-2 baking, datapoints passing", lambda: gate_result(
        engine, "canary", "prod-canary", "canary-2", "baking", "datapoints") == "pass")
    bad.labels(CANARY[1]).set(1)
    finished = engine.wait_status("canary-2", "rolled_back", "failed", timeout=30)
    assert finished["status"] == "rolled_back", finished
    shown_v2 = json.loads(engine.cli("executions", "show", "canary-2", "--format", "json"))
    assert "datapoints: 1 negative of at most 0" in shown_v2["reason"]
    events = engine.events("canary")
    # enough good traffic at once (the bake's time held it), then the one negative
    assert [(e["data"]["result"], e["data"]["code"]) for e in gate_events(events, "canary-2", "datapoints")] \
        == [("pass", "ok"), ("fail", "negative_datapoints")]
    failed = gate_events(events, "canary-2", "datapoints")[-1]
    assert failed["data"]["inputs"]["negative"]["value"] == 1
    started = next(e for e in events if e["type"] == "rollback_started" and e["execution"] == "canary-2")
    assert started["data"] == {"trigger": "datapoints", "to": {"prod-canary-cell": v1}}
    # the rollback hooks ran v1 again on both hosts, after v2's
    rolled = [line for line in engine.records("canary") if line.endswith("rollback=1")]
    assert {line.split()[1] for line in rolled} == set(CANARY)
    assert all(line.split()[3] == v1 for line in rolled)
    hosts = {h["host"]: h["artifact"] for t in next(s for s in engine.status("canary")["stages"])["targets"]
             for h in t["hosts"]}
    assert hosts == dict.fromkeys(CANARY, v1)


def test_an_alarm_that_fires_mid_bake_rolls_back(engine: Engine) -> None:
    errors = engine.gauges["pw_errors"]
    engine.wait_status("alarmed-1", "succeeded", timeout=60)
    v1 = git(engine.repos["alarmed"], "rev-parse", "HEAD")[:12]
    commit(engine.repos["alarmed"], "v2", text=alarmed_yaml("60s"))
    wait("alarmed-2 baking, its alarm quiet", lambda: gate_result(
        engine, "alarmed", "prod-canary", "alarmed-2", "baking", "alarms") == "pass")
    errors.labels(ALARMED[0]).set(4)
    finished = engine.wait_status("alarmed-2", "rolled_back", "failed", timeout=30)
    assert finished["status"] == "rolled_back", finished
    events = engine.events("alarmed")
    alarms = gate_events(events, "alarmed-2", "alarms", "prod-canary")
    codes = [(e["data"]["result"], e["data"]["code"]) for e in alarms]
    assert codes[0] == ("pass", "ok") and codes[-1] == ("fail", "alarm_firing"), codes
    state = alarms[-1]["data"]["inputs"]["alarms"]["errors"]
    assert (state["firing"], state["streak"], state["periods"], state["last"]["value"]) == (True, 2, 2, 4)
    # it fired at the second breaching evaluation, a poll after the first (periods: 2)
    assert parse_time(state["fired"]) - parse_time(state["since"]) >= timedelta(seconds=0.5)
    assert "127[.]0[.]0[.]1:9521" in state["last"]["query"]  # the stage's own host ($__hosts)
    started = next(e for e in events if e["type"] == "rollback_started" and e["execution"] == "alarmed-2")
    assert started["data"] == {"trigger": "alarm", "to": {"prod-canary-cell": v1}}
    assert any(e["type"] == "bake_finished" and e["execution"] == "alarmed-2" and e["data"]["result"] == "failed"
               for e in events)
    errors.labels(ALARMED[0]).set(0)


def test_a_closed_window_waits_until_it_opens_then_override_window_lets_it_through(engine: Engine) -> None:
    until = format_time(engine.opens.astimezone(UTC))
    gate = wait("windowed-1 at the closed window", lambda: waiting_gate(
        engine, "windowed", "prod", "windowed-1", "window", "window_closed"))
    assert gate["until"] == until
    shown = next(s for s in engine.status("windowed")["stages"] if s["name"] == "prod")
    assert shown["execution"]["status"] == "waiting"
    assert next(g for g in shown["execution"]["gates"] if g["gate"] == "window")["until"] == until
    assert engine.records("windowed") == []  # nothing deployed
    out = engine.cli("override", "window", "--pipeline", "windowed", "--stage", "prod", "--reason", "hotfix")
    assert "window overridden until" in out
    shown = next(s for s in engine.status("windowed")["stages"] if s["name"] == "prod")
    assert [(o["gate"], o["reason"]) for o in shown["overrides"]] == [("window", "hotfix")]
    engine.wait_status("windowed-1", "succeeded", timeout=30)
    assert datetime.now(UTC) < engine.opens  # it did not wait for the window
    events = engine.events("windowed")
    window = gate_events(events, "windowed-1", "window")
    assert [(e["data"]["result"], e["data"]["code"]) for e in window] == [("wait", "window_closed"), ("pass", "ok")]
    assert window[0]["data"]["until"] == until
    assert window[1]["data"]["inputs"]["overridden"]["code"] == "window_closed"
    granted = next(e for e in events if e["type"] == "override_granted")
    assert granted["data"]["gate"] == "window" and granted["data"]["reason"] == "hotfix"


def test_a_blocklist_entry_stops_an_artifact_in_flight_and_fixed_by_lets_the_fix_through(engine: Engine) -> None:
    repo = engine.repos["blocked"]
    bad = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "fix")
    fix = commit(repo, "the fix")
    git(repo, "checkout", "-q", "main")
    engine.wait_status("blocked-1", "running")
    wait("blocked-1 awaiting promotion in beta",
         lambda: engine.occupant("blocked", "beta") == ("blocked-1", "awaiting_promotion"))
    # In flight: the org adds the bad commit to its blocklist, with the commit that fixes it.
    write(engine.org / "acme.yaml", ORG + "blocklist:\n  git_refs:\n"
          f"    - {{ref: '{bad}', reason: leaks memory, fixed_by: '{fix}'}}\n")
    engine.cli("promote", "blocked-1", "--stage", "beta", "--reason", "looks fine")
    finished = engine.wait_status("blocked-1", "failed", timeout=30)
    assert "blocklist" in json.loads(engine.cli("executions", "show", "blocked-1", "--format", "json"))["reason"]
    assert not [line for line in engine.records("blocked") if line.startswith("prod ")]  # never reached prod
    # The fix reaches the branch: it passes the same entry.
    git(repo, "merge", "-q", "--ff-only", "fix")
    engine.wait_status("blocked-2", "running")
    wait("blocked-2 awaiting promotion in beta",
         lambda: engine.occupant("blocked", "beta") == ("blocked-2", "awaiting_promotion"))
    engine.cli("promote", "blocked-2", "--stage", "beta")
    engine.wait_status("blocked-2", "succeeded", timeout=30)
    assert {line.split()[3] for line in engine.records("blocked") if line.startswith("prod ")} == {fix[:12]}
    events = engine.events("blocked")
    stopped = gate_events(events, "blocked-1", "blocklist", "prod")
    assert [(e["data"]["result"], e["data"]["code"]) for e in stopped] == [("fail", "blocked_commit")]
    assert "leaks memory" in stopped[0]["data"]["reason"]
    assert finished["status"] == "failed"
    passed = gate_events(events, "blocked-2", "blocklist", "prod")
    assert [(e["data"]["result"], e["data"]["code"]) for e in passed] == [("pass", "ok")]
    assert passed[0]["data"]["inputs"]["fixed"] == [{"ref": bad, "fixed_by": fix}]


def test_every_decision_is_an_event_with_its_inputs_and_the_chain_verifies(engine: Engine) -> None:
    events = [json.loads(line) for line in engine.cli("events", "--format", "jsonl").splitlines() if line.strip()]
    gates = [e for e in events if e["type"] == "gate"]
    assert {e["data"]["gate"] for e in gates} >= {"policy", "blocklist", "window", "alarms", "datapoints",
                                                  "bake_time", "stage_busy", "paused"}
    for event in gates:
        assert set(event["data"]) == {"gate", "result", "code", "reason", "until", "inputs"}, event
        assert isinstance(event["data"]["inputs"], dict) and event["data"]["inputs"], event
    datapoints = [e for e in gates if e["data"]["gate"] == "datapoints"]
    assert all("127[.]0[.]0[.]1:9511|127[.]0[.]0[.]1:9512" in e["data"]["inputs"]["positive"]["query"]
               for e in datapoints)
    # each execution's end is an event too, with its reason
    ended = {e["execution"]: e["data"]["status"] for e in events if e["type"] == "execution_finished"}
    assert {k: ended.get(k) for k in ("canary-1", "canary-2", "alarmed-2", "windowed-1", "blocked-1", "blocked-2")} \
        == {"canary-1": "succeeded", "canary-2": "rolled_back", "alarmed-2": "rolled_back",
            "windowed-1": "succeeded", "blocked-1": "failed", "blocked-2": "succeeded"}
    verified = subprocess.run([sys.executable, "-m", "pipewarden", "audit", "verify", "--state-dir",
                               str(engine.state)], capture_output=True, text=True, timeout=60, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
