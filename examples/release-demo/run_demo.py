"""The release engine demo (issue 13): a real release and a real automatic rollback, in a few minutes.

    .venv/bin/python examples/release-demo/run_demo.py [--keep] [--work DIR] [--timeout SECONDS]

1. Makes a git repository from this folder's template (the service, its hooks and its pipeline,
   with free loopback ports written into `pipeline.yaml`), its git identity set inside it.
2. Writes an EngineConfig (the example org's levels, exceptions and policies; git and gates
   polled every second) and starts `pipewarden server` on a state dir of its own.
3. The poller releases v1.0.0 through beta, gamma, the canary cell and two waves (`executions
   list` is polled until it succeeds); `pipewarden status` is printed.
4. Commits v2.0.0, a bad version whose service answers 5xx in prod (GET / answers 500, /health
   stays 200, so every hook passes): it passes beta and gamma and deploys to the canary cell, where
   the server's synthetic (`home-page`, GET / on every host every second) counts its failures; the
   bake's datapoints gate fails on them (`max_negative: 0`) and the engine rolls the canary back to
   v1.0.0 by itself (trigger `datapoints`). The rollback with its trigger, the datapoints gate's
   reason (its counts), status and the key events are printed.
5. Stops the server (SIGTERM), stops every service the hooks started (the PID files in the host
   dirs) and checks that no process of the demo is left, even after Ctrl-C or an error.

Standard library only; the engine is driven through the `pipewarden` command line. Exit 0 when
the demo ran as described, 1 otherwise (the work dir is then kept, with the server's log).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ORG = ROOT / "org-configs" / "example"
PIPELINE = "release-demo"
BUDGET_SECONDS = 180  # issue 13: the whole demo within 3 minutes on 2 cores
# Files of this folder that are the demo's own, not the template's.
NOT_TEMPLATE = {"run_demo.py", "__pycache__", "pipeline.yaml.in"}
BAD_FAULT = "mode=errors\nstages=prod-*\n"  # / answers 500 on prod stages only, /health 200 (service.py)
KEY_EVENTS = {"execution_started", "build_finished", "stage_started", "tests_finished", "bake_finished",
              "rollback_started", "rollback_finished", "execution_finished", "superseded"}


class DemoFailed(Exception):
    """The demo did not go as described; the message says what happened."""


class Stopped(BaseException):
    """SIGTERM or SIGHUP to the demo: clean up as for Ctrl-C."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", metavar="DIR", help="work dir (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (repository, state dir, logs)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                        help="give up after this long (default 300; the demo's budget is 180)")
    parser.add_argument("--pipewarden", metavar="PATH", help="the pipewarden command (default: beside this Python)")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    # Ctrl-C stops the demo even when a shell started it with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(args)
    ok = False
    try:
        demo.run()
        ok = True
    except DemoFailed as error:
        print(f"\nDEMO FAILED: {error}", file=sys.stderr)
    except (KeyboardInterrupt, Stopped):
        print("\ninterrupted: stopping everything the demo started", file=sys.stderr)
    finally:
        ok = demo.cleanup(ok) and ok
    return 0 if ok else 1


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.deadline = self.started + args.timeout
        self.pipewarden = args.pipewarden or _default_pipewarden()
        self.made_work = not args.work
        self.work = Path(args.work or tempfile.mkdtemp(prefix="pipewarden-release-demo-")).resolve()
        self.repo = self.work / "repo"
        self.state = self.work / "state"
        self.config = self.work / "engine.yaml"
        self.server_log = self.work / "server.log"
        self.server: subprocess.Popen[bytes] | None = None
        self.hosts: list[str] = []
        self.seen: dict[str, tuple[str, str | None]] = {}
        # Clients find the server through the state dir only, never a server of the caller's.
        self.env = {k: v for k, v in os.environ.items() if k not in ("PIPEWARDEN_SERVER", "PIPEWARDEN_TOKEN")}
        # The hooks and build tests run the service with this Python (the worker's environment).
        self.env["PYTHON"] = sys.executable

    # ------------------------------------------------------------------ the story

    def run(self) -> None:
        print(f"== release demo: work dir {self.work}")
        if self.work.exists() and any(self.work.iterdir()):
            raise DemoFailed(f"{self.work} is not empty; give an empty or new --work dir")
        self.work.mkdir(parents=True, exist_ok=True)
        self.make_repository()
        self.write_config()
        self.start_server()

        print("\n== v1.0.0: the poller releases the first commit through every stage")
        first = self.wait_for_execution(commit=self.head(), until={"succeeded"})
        self.step(f"{first['id']} {first['status']}")
        self.expect_versions({"beta": "1.0.0", "gamma": "1.0.0", "prod": "1.0.0"})
        self.show_status()

        print("\n== v2.0.0: a bad version (GET / answers 500 in prod, /health stays 200) is committed")
        (self.repo / "VERSION").write_text("2.0.0\n", encoding="utf-8")
        (self.repo / "FAULT").write_text(BAD_FAULT, encoding="utf-8")
        self.git("add", "VERSION", "FAULT")
        self.git("commit", "--quiet", "-m", "v2.0.0: a bug that only shows in production")
        second = self.wait_for_execution(commit=self.head(), until={"rolled_back", "failed", "succeeded", "cancelled",
                                                                     "superseded"})
        if second["status"] != "rolled_back" or second["stage"] != "prod-canary":
            raise DemoFailed(f"{second['id']} ended {second['status']} at {second['stage']}, "
                             "expected rolled_back at prod-canary")
        self.step(f"{second['id']} rolled back at {second['stage']} by itself")
        self.show_rollback(second["id"])
        # Preprod keeps v2 (its bug shows only in prod); every prod host serves v1 again.
        self.expect_versions({"beta": "2.0.0", "gamma": "2.0.0", "prod": "1.0.0"})
        self.show_status()
        self.show_events()

    # ------------------------------------------------------------------ setting up

    def make_repository(self) -> None:
        template = (HERE / "pipeline.yaml.in").read_text(encoding="utf-8")
        slots = sorted({int(n) for n in re.findall(r"@PORT(\d+)@", template)})
        ports = free_ports(len(slots))
        by_slot = dict(zip(slots, ports, strict=True))
        pipeline = re.sub(r"@PORT(\d+)@", lambda m: str(by_slot[int(m.group(1))]), template)
        self.hosts = [f"127.0.0.1:{by_slot[s]}" for s in slots]
        shutil.copytree(HERE, self.repo, ignore=lambda _d, names: [n for n in names if n in NOT_TEMPLATE
                                                                    or n.endswith(".pyc")])
        (self.repo / "pipeline.yaml").write_text(pipeline, encoding="utf-8")
        self.git("init", "--quiet", "--initial-branch=main")
        # The identity lives in this repository only; never the user's global configuration.
        self.git("config", "user.name", "Release Demo")
        self.git("config", "user.email", "release-demo@example.invalid")
        self.git("config", "commit.gpgsign", "false")
        self.git("add", ".")
        self.git("commit", "--quiet", "-m", "v1.0.0: the release demo's service")
        self.step(f"git repository {self.repo} (v1.0.0 at {self.head()[:12]}); "
                  f"{len(self.hosts)} hosts on free ports {ports[0]}..{ports[-1]}")

    def write_config(self) -> None:
        self.config.write_text(
            "apiVersion: pipewarden/v1\n"
            "kind: EngineConfig\n"
            f"org_config: {json.dumps(str(ORG))}\n"
            f"policies: [{json.dumps(str(ORG / 'policies'))}]\n"
            "poll: {git: 1s, gates: 1s}\n"
            "pipelines:\n"
            f"  - {{repo: {json.dumps(str(self.repo))}, branch: main, pipeline: pipeline.yaml}}\n",
            encoding="utf-8")

    def start_server(self) -> None:
        command = [self.pipewarden, "server", "--config", str(self.config), "--state-dir", str(self.state),
                   "--listen", "127.0.0.1:0"]
        print(f"\n== {' '.join(_short(c) for c in command)}")
        with open(self.server_log, "ab") as log:
            # Its own process group, so that its whole tree can be stopped whatever happens here.
            self.server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, cwd=self.work, start_new_session=True)
        info = self.state / "server.json"
        url = None
        while True:
            self.check_server()
            if url is None and info.exists():
                try:
                    url = str(json.loads(info.read_text(encoding="utf-8"))["url"]).rstrip("/")
                except (ValueError, KeyError, OSError):
                    url = None
            if url is not None and http_status(f"{url}/api/v1/health") == 200:
                break
            self.wait_a_little("the server to answer /api/v1/health", 0.3)
        self.step(f"server pid {self.server.pid} healthy at {url} (log: {self.server_log})")

    # ------------------------------------------------------------------ watching

    def wait_for_execution(self, *, commit: str, until: set[str]) -> dict[str, Any]:
        """Poll `executions list` until the execution of `commit` has a status in `until`, printing
        each change of its status or stage."""
        while True:
            self.check_server()
            listed = self.cli_json("executions", "list", "--pipeline", PIPELINE)
            for execution in reversed(listed.get("executions", [])):
                now = (execution["status"], execution.get("stage"))
                if self.seen.get(execution["id"]) != now:
                    self.seen[execution["id"]] = now
                    self.step(f"{execution['id']}: {now[0]}" + (f" at {now[1]}" if now[1] else ""))
                if execution["commit"] == commit and execution["status"] in until:
                    return dict(execution)
            self.wait_a_little(f"the execution of {commit[:12]} to end {' or '.join(sorted(until))}", 1.0)

    def show_rollback(self, execution: str) -> None:
        """The rollback's trigger and the datapoints gate's verdict (its counts), from the audit log:
        the canary must have been rolled back by its synthetic datapoints, not by a hook."""
        lines = self.cli("events", "--execution", execution, "--format", "jsonl").splitlines()
        events = [json.loads(line) for line in lines if line.strip()]
        gates = [e for e in events if e["type"] == "gate" and (e.get("data") or {}).get("gate") == "datapoints"
                 and e.get("stage") == "prod-canary"]
        started = [e for e in events if e["type"] == "rollback_started"]
        failed_hooks = [e for e in events if e["type"] == "hook" and (e.get("data") or {}).get("exit_code") != 0]
        print(f"\n$ pipewarden events --execution {execution}   (the canary's datapoints gate and the rollback)")
        for event in gates:
            data = event["data"]
            print(f"  {event['time']}  gate datapoints {data.get('result')} ({data.get('code')}): {data.get('reason')}")
        for event in events:
            if event["type"] in ("rollback_started", "rollback_finished"):
                data = event.get("data") or {}
                detail = ", ".join(f"{k}={_brief(v)}" for k, v in data.items() if k in (
                    "trigger", "reason", "status", "to", "duration_ms", "duration_s", "restored") and v not in (None, [], ""))
                print(f"  {event['time']}  {event['type']}  {detail}")
        trigger = (started[-1].get("data") or {}).get("trigger") if started else None
        verdict = gates[-1]["data"] if gates else {}
        if trigger != "datapoints" or verdict.get("code") != "negative_datapoints" or failed_hooks:
            raise DemoFailed(f"{execution} was not rolled back by its datapoints: trigger {trigger!r}, last datapoints "
                             f"gate {verdict.get('result')} {verdict.get('code')} ({verdict.get('reason')}), "
                             f"{len(failed_hooks)} failed hook(s)")
        self.step(f"rollback trigger: {trigger}; datapoints gate: {verdict.get('reason')}")

    def show_status(self) -> None:
        print(f"\n$ pipewarden status {PIPELINE}")
        print(self.cli("status", PIPELINE).rstrip())

    def show_events(self) -> None:
        """The audit log's key events (`events --format jsonl`, summarised: hooks are counted per
        stage, the failed ones shown)."""
        print(f"\n$ pipewarden events --pipeline {PIPELINE}   (key events; hooks counted per stage)")
        lines = self.cli("events", "--pipeline", PIPELINE, "--format", "jsonl").splitlines()
        events = [json.loads(line) for line in lines if line.strip()]
        hooks: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for event in events:
            if event["type"] == "hook":
                hooks.setdefault((event["execution"], event["stage"]), []).append(event)
        for event in events:
            data = event.get("data") or {}
            kind = event["type"]
            where = " ".join(x for x in (event.get("execution"), event.get("stage"), event.get("host")) if x)
            if kind == "hook" and data.get("exit_code") != 0:
                print(f"  {event['time']}  {where}  hook {data.get('hook')} FAILED "
                      f"(exit {data.get('exit_code')}; log {data.get('log')})")
            elif kind == "gate" and (data.get("result") == "fail" or data.get("gate") == "datapoints"):
                print(f"  {event['time']}  {where}  gate {data.get('gate')} {data.get('result')}: {data.get('reason')}")
            elif kind in KEY_EVENTS:
                detail = ", ".join(f"{k}={_brief(v)}" for k, v in data.items() if k in (
                    "commit", "result", "artifact", "status", "reason", "trigger", "to", "duration_ms",
                    "duration_s", "failed") and v not in (None, [], ""))
                print(f"  {event['time']}  {where}  {kind}  {detail}")
            if kind == "stage_started" and hooks.get((event["execution"], event["stage"])):
                print(f"  {'':24}  {hook_summary(hooks[(event['execution'], event['stage'])])}")
        print(f"  ({len(events)} events in all: pipewarden events --state-dir {self.state} --format text)")

    def expect_versions(self, wanted: dict[str, str]) -> None:
        """Every host of each stage (from `status --format json`) answers GET / with the version
        wanted for its stage (`prod` stands for every prod stage): the services the hooks started,
        asked directly."""
        status = self.cli_json("status", PIPELINE)
        wrong, counted = {}, 0
        for stage in status.get("stages", []):
            version = wanted["prod" if stage["type"] == "prod" else stage["name"]]
            for target in stage["targets"]:
                for host in target["hosts"]:
                    counted += 1
                    code, body = http_get(f"http://{host['host']}/")
                    if code != 200 or not body.strip().endswith(version):
                        wrong[host["host"]] = f"{stage['name']}: {code} {body.strip()[:80]}"
        if wrong or counted != len(self.hosts):
            raise DemoFailed(f"hosts not serving what they should ({wanted}), of {counted}: {wrong}")
        self.step("the services answer GET /: " + ", ".join(f"{k} {v}" for k, v in wanted.items()))

    # ------------------------------------------------------------------ helpers

    def step(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def wait_a_little(self, what: str, seconds: float) -> None:
        if time.monotonic() + seconds > self.deadline:
            raise DemoFailed(f"gave up after {self.args.timeout:g}s waiting for {what}")
        time.sleep(seconds)

    def check_server(self) -> None:
        if self.server is not None and self.server.poll() is not None:
            raise DemoFailed(f"the server exited with code {self.server.returncode}; the end of its log:\n"
                             + tail(self.server_log))

    def cli(self, *args: str) -> str:
        command = [self.pipewarden, *args, "--state-dir", str(self.state)]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, stdin=subprocess.DEVNULL,
                              timeout=60, check=False)
        if done.returncode != 0:
            raise DemoFailed(f"`{' '.join(_short(c) for c in command)}` exited {done.returncode}: "
                             f"{(done.stderr or done.stdout).strip()}")
        return done.stdout

    def cli_json(self, *args: str) -> dict[str, Any]:
        out = self.cli(*args, "--format", "json")
        try:
            return dict(json.loads(out))
        except ValueError as error:
            raise DemoFailed(f"pipewarden {' '.join(args)} printed no JSON ({error}): {out[:300]}") from error

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.repo, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise DemoFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    # ------------------------------------------------------------------ stopping everything

    def cleanup(self, ok: bool) -> bool:
        """Stop the server (SIGTERM, then its whole group), the services the hooks started, and
        anything else of the demo's still alive. False when something had to be killed that the
        server should have stopped itself."""
        clean = True
        # Signals during the cleanup must not cut it short.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if self.server is not None:
            if self.server.poll() is None:
                self.server.send_signal(signal.SIGTERM)
                try:
                    self.server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    print("the server did not stop within 30 s of SIGTERM: SIGKILL to its process group",
                          file=sys.stderr)
                    clean = False
            kill_group(self.server.pid)
            self.server.wait()
            print(f"\n== server stopped (exit {self.server.returncode})")
        stopped = self.stop_services()
        if stopped:
            print(f"== stopped {stopped} service process(es) the hooks started (PID files in {self.state / 'hosts'})")
        still: list[int] = []
        if self.server is not None:
            markers = (self.state, self.repo)
            left = [p for p in demo_processes(markers) if p != os.getpid()]
            if left:
                clean = False
                print(f"LEFT BEHIND by the server, now killed: {describe(left)}", file=sys.stderr)
                for pid in left:
                    kill_pid(pid)
                time.sleep(0.2)
            still = [p for p in demo_processes(markers) if p != os.getpid()]
            if still:
                print(f"STILL ALIVE: {describe(still)}", file=sys.stderr)
            else:
                print("== no process of the demo is left")
        elapsed = time.monotonic() - self.started
        verdict = "within" if elapsed <= BUDGET_SECONDS else "OVER"
        print(f"== elapsed {elapsed:.1f}s ({verdict} the {BUDGET_SECONDS}s budget)")
        if ok and clean and not self.args.keep and self.made_work:
            shutil.rmtree(self.work, ignore_errors=True)
        elif self.work.exists():
            print(f"== work dir kept: {self.work}" + (f" (server log: {self.server_log})" if self.server else ""))
        return clean and not still

    def stop_services(self) -> int:
        """Stop the service of every host dir by its PID file (only a process that is that host's
        service.py), as the stop hook would."""
        stopped = []
        for pidfile in sorted((self.state / "hosts").glob("*/service.pid")):
            try:
                pid = int(pidfile.read_text(encoding="utf-8").strip())
            except (OSError, ValueError):
                continue
            if "service.py" in cmdline(pid) and str(pidfile.parent) in cmdline(pid):
                os.kill(pid, signal.SIGTERM)
                stopped.append(pid)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in stopped) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in stopped:
            if alive(pid):
                kill_pid(pid)
        return len(stopped)


def hook_summary(runs: list[dict[str, Any]]) -> str:
    """`12 hook runs on 3 hosts, at most 1 host at a time`: how many hosts a stage's deploy had
    in hand at once (min_healthy batching), from each host's first hook start to its last end."""
    spans: dict[str, list[float]] = {}
    rollback = 0
    for run in runs:
        end = parse_time(run["time"])
        start = end - (run["data"].get("duration_ms") or 0) / 1000
        if "-rollback" in str(run["data"].get("log")):
            rollback += 1
            continue  # a rollback redeploys in its own batches; counted apart
        span = spans.setdefault(run["host"], [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    at_once = max((sum(1 for a, b in spans.values() if a <= t < b) for t, _ in spans.values()), default=0)
    text = f"{len(runs)} hook runs on {len(spans)} host(s), at most {at_once} host(s) at a time"
    return text + (f"; {rollback} of them rolling back" if rollback else "")


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------------- processes and ports

def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open at once while choosing)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(closing(socket.socket())) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return sorted(sock.getsockname()[1] for sock in sockets)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def demo_processes(markers: tuple[Path, ...]) -> list[int]:
    """Live processes whose command line names the demo's state dir or repository, or that run
    inside them (the server, Temporal, hooks, builds and services all do). Linux /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        line = cmdline(pid)
        if any(str(m) in line or cwd == str(m) or cwd.startswith(f"{m}{os.sep}") for m in markers) and alive(pid):
            found.append(pid)
    return found


def describe(pids: list[int]) -> str:
    return "; ".join(f"{pid} {cmdline(pid)[:120]}" for pid in pids)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as error:
        return 0, str(getattr(error, "reason", error))


def http_status(url: str) -> int:
    return http_get(url, timeout=2.0)[0]


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _default_pipewarden() -> str:
    beside = Path(sys.executable).parent / "pipewarden"
    return str(beside) if beside.exists() else (shutil.which("pipewarden") or "pipewarden")


def _short(text: str) -> str:
    return text.replace(str(Path.home()), "~")


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:12] if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}", value) else text[:160]


if __name__ == "__main__":
    sys.exit(main())
