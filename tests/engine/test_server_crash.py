"""`pipewarden server` with an EngineConfig, end to end, as a user runs it: the poller releases a
commit of a real git repository whose hooks record what they do; a person approves; the server's
whole process group is killed with SIGKILL mid-bake and mid-deploy and started again on the same
state dir. Every execution goes on where it was: no completed hook runs again, the hook that was
cut off runs again as attempt 2 (after an `interrupted` record), the audit chain verifies, and
`status`, `executions list`, `events` and `audit verify` say so."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from server_helpers import ServerProcess
from workflow_helpers import git, write

PIPELINE = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: crash-demo, team: demo}
build:
  commands: ["mkdir -p dist && cp app.txt dist/"]
  artifact: dist/
  tests: [{name: unit, type: unit, command: "test -f dist/app.txt"}]
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-cell, hosts: ["127.0.0.1:9501", "127.0.0.1:9502"]}]
    deploy:
      hooks: {stop: ./hooks/hook.sh, install: ./hooks/install.sh, start: ./hooks/hook.sh, validate: ./hooks/hook.sh}
      min_healthy: 50%
    bake: {duration: BAKE}
    rollback: automatic
  - name: prod
    type: prod
    approvals: [{name: release-manager, type: manual}]
    targets: [{name: cell-1, hosts: ["127.0.0.1:9601"]}]
    deploy:
      hooks: {stop: ./hooks/hook.sh, install: ./hooks/hook.sh, start: ./hooks/hook.sh, validate: ./hooks/hook.sh}
    bake: {duration: 1s}
    rollback: automatic
"""


pytestmark = pytest.mark.usefixtures("needs_temporal")


def make_repo(root: Path, record: Path, *, bake: str, slow_install: bool) -> Path:
    """A repository whose hooks append `STAGE HOST HOOK ARTIFACT` to `record` (install also writes
    `begin` first and, with `slow_install`, sleeps 6 s on beta's first host, so a test can kill the
    server while that hook runs)."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test Dev")
    git(repo, "config", "user.email", "dev@example.com")
    write(repo / "pipeline.yaml", PIPELINE.replace("BAKE", bake))
    write(repo / "app.txt", "v1\n")
    line = f'echo "$PIPEWARDEN_STAGE $PIPEWARDEN_HOST $PIPEWARDEN_HOOK $PIPEWARDEN_ARTIFACT" >> {record}\n'
    write(repo / "hooks" / "hook.sh", "#!/bin/sh\n" + line, executable=True)
    slow = 'if [ "$PIPEWARDEN_HOST" = 127.0.0.1:9501 ]; then sleep 6; fi\n' if slow_install else ""
    write(repo / "hooks" / "install.sh",
          f'#!/bin/sh\necho "$PIPEWARDEN_STAGE $PIPEWARDEN_HOST begin" >> {record}\n{slow}{line}', executable=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def write_config(root: Path, repo: Path) -> Path:
    config = root / "engine.yaml"
    config.write_text(f"""apiVersion: pipewarden/v1
kind: EngineConfig
poll: {{git: 1s, gates: 1s}}
pipelines:
  - repo: {repo}
""")
    return config


def cli(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pipewarden", *args, "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def executions(state: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(cli(state, "executions", "list", "--format", "json").stdout)["executions"]
    return listed


def stage_status(state: Path, stage: str) -> dict[str, Any] | None:
    status = json.loads(cli(state, "status", "crash-demo", "--format", "json").stdout)
    for entry in status["stages"]:
        if entry["name"] == stage:
            execution: dict[str, Any] | None = entry["execution"]
            return execution
    assert not status["stages"], f"no stage {stage} in {status}"
    return None  # the poller has not read the definition yet


def wait(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def events(state: Path) -> list[dict[str, Any]]:
    text = cli(state, "events", "--format", "jsonl").stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def finish_and_check(server: ServerProcess, state: Path, record: Path) -> list[dict[str, Any]]:
    """Approve prod, wait for success, and check what every crash test checks."""
    wait("the approval gate at prod", lambda: (stage_status(state, "prod") or {}).get("status") == "waiting"
         and any(g["gate"] == "approval" and g["result"] == "wait" for g in stage_status(state, "prod")["gates"]))
    cli(state, "approve", "crash-demo-1", "--stage", "prod", "--reason", "looks good")
    wait("the execution to succeed", lambda: executions(state)[0]["status"] == "succeeded")
    listed = executions(state)
    assert [(e["id"], e["status"]) for e in listed] == [("crash-demo-1", "succeeded")]
    log = events(state)
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    approved = [e for e in log if e["type"] == "approved"]
    assert len(approved) == 1 and approved[0]["actor"] == "admin"
    # Every hook completed exactly once per host (the record holds one line per completed hook).
    lines = [line for line in record.read_text().splitlines() if not line.endswith(" begin")]
    assert Counter(lines).most_common(1)[0][1] == 1, record.read_text()
    assert len(lines) == 4 * 3  # 4 hooks on 3 hosts
    # One `hook` event per finished hook run, none written twice.
    keys = Counter((e["stage"], e["host"], e["data"]["hook"], e["data"]["attempt"]) for e in log if e["type"] == "hook")
    assert max(keys.values()) == 1
    verify = cli(state, "audit", "verify")
    assert verify.returncode == 0
    return log


@pytest.mark.parametrize("bake", ["8s", "8s, deadline: 10m"], ids=["bake_time alone: a timer", "watched: bake_stage"])
def test_release_through_the_server_with_a_kill_mid_bake(tmp_path: Path, bake: str) -> None:
    """A bake with `bake_time` alone is a durable timer; one with a deadline (or datapoints, or
    alarms) is a `bake_stage` activity held by the killed server's worker, which the new server's
    worker takes over once its heartbeat times out (30 s)."""
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, bake=bake, slow_install=False)
    config = write_config(tmp_path, repo)
    state = tmp_path / "state"
    server = ServerProcess(state, "--config", str(config)).start()
    try:
        wait("beta to bake", lambda: (stage_status(state, "beta") or {}).get("status") == "baking")
        server.kill()
        hooks_before = record.read_text()
        server = ServerProcess(state, "--config", str(config)).start()
        log = finish_and_check(server, state, record)
        assert record.read_text().startswith(hooks_before)
        # The bake was started once and finished once, across the crash.
        assert [e["type"] for e in log].count("bake_started") == 2  # beta and prod
        assert [e["type"] for e in log].count("execution_started") == 1
        status = json.loads(cli(state, "status", "crash-demo", "--format", "json").stdout)
        artifact = listed_artifact = executions(state)[0]["artifact"]
        assert listed_artifact == git(repo, "rev-parse", "HEAD")[:12]
        hosts = [host for stage in status["stages"] for target in stage["targets"] for host in target["hosts"]]
        assert {host["artifact"] for host in hosts} == {artifact}
        assert {host["state"] for host in hosts} == {"ok"}
    finally:
        server.kill()


def test_kill_mid_deploy_runs_the_cut_off_hook_again_as_attempt_2(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, bake="1s", slow_install=True)
    config = write_config(tmp_path, repo)
    state = tmp_path / "state"
    server = ServerProcess(state, "--config", str(config)).start()
    try:
        wait("the slow install hook to begin",
             lambda: record.exists() and "beta 127.0.0.1:9501 begin" in record.read_text())
        server.kill()
        server = ServerProcess(state, "--config", str(config)).start()
        log = finish_and_check(server, state, record)
        installs = [e for e in log if e["type"] == "hook" and e["host"] == "127.0.0.1:9501"
                    and e["data"]["hook"] == "install"]
        assert [(e["data"]["attempt"], e["data"]["interrupted"]) for e in installs] == [(1, True), (2, False)]
        assert installs[0]["data"]["exit_code"] is None
        assert record.read_text().count("beta 127.0.0.1:9501 begin") == 2
    finally:
        server.kill()
