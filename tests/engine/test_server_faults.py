"""Bad input and faults (issue 13), end to end: `pipewarden server` as a real process with an
EngineConfig of two pipelines in two repositories (poll 1 s). `steady` releases normally the whole
time; `faulty` goes wrong in each way of the issue, one commit after the other, in one server run:

1. its build command exits 1;
2. its build leaves no `build.artifact`;
3. (a good commit, so that the next one has something to roll back to);
4. its `validate` hook hangs: killed at `deploy.timeout` (3 s) with its whole process group (a
   background child included), the host fails, and the stage rolls back by itself;
5. the same hang with `rollback: manual`: the execution fails and the stage stays failed;
6. its pipeline file becomes invalid: the policy gate fails, listing the finding;
7. its branch disappears (one `branch_missing` event, polling goes on), and comes back with a new
   commit, which is released;
8. it moves onto one of steady's hosts: the policy gate checks the fleet rules against the heads of
   the engine's other pipelines, and the org enforces `single-release-process`;
9. its repository is moved away while a build runs: that execution fails naming the repository,
   the server says so once in its log and keeps running, `steady` still releases; moved back, the
   next commit is released.

Each time `executions list`, `executions show` and `events` say how the execution ended and why,
and `status` still answers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import ServerProcess, alive
from workflow_helpers import git, write

STEADY = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: steady, team: demo}
build:
  commands: ["mkdir -p dist && cp app.txt dist/"]
  artifact: dist/
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-cell, hosts: ["127.0.0.1:9701"]}]
    deploy:
      hooks: {install: ./hooks/hook.sh, validate: ./hooks/hook.sh}
    bake: {duration: 1s}
    rollback: automatic
"""

FAULTY = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: faulty, team: demo}
build:
  commands: ["BUILD"]
  artifact: dist/
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-cell, hosts: ["127.0.0.1:9801"]}]
    deploy:
      hooks: {install: ./hooks/hook.sh, validate: ./hooks/validate.sh}
      timeout: 3s
    bake: {duration: 1s}
    rollback: ROLLBACK
"""

GOOD_BUILD = "mkdir -p dist && cp app.txt dist/"

# The org of both pipelines: single-release-process blocks (every other rule at its default).
ORG = """apiVersion: pipewarden/v1
kind: OrgConfig
metadata: {name: acme, owners: [ops]}
teams: [demo]
rules:
  single-release-process: {level: enforce}
"""


pytestmark = pytest.mark.usefixtures("needs_temporal")


def faulty_yaml(*, build: str = GOOD_BUILD, rollback: str = "automatic") -> str:
    return FAULTY.replace("BUILD", build).replace("ROLLBACK", rollback)


def make_repo(path: Path, pipeline: str, record: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Dev")
    git(path, "config", "user.email", "dev@example.com")
    write(path / "pipeline.yaml", pipeline)
    write(path / "app.txt", "v1\n")
    line = f'echo "$PIPEWARDEN_PIPELINE $PIPEWARDEN_HOST $PIPEWARDEN_HOOK $PIPEWARDEN_ARTIFACT" >> {record}\n'
    write(path / "hooks" / "hook.sh", "#!/bin/sh\n" + line, executable=True)
    write(path / "hooks" / "validate.sh", "#!/bin/sh\n" + line, executable=True)
    commit(path, "v1")
    return path


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def cli(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pipewarden", *args, "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def listed(state: Path, pipeline: str) -> list[dict[str, Any]]:
    out = cli(state, "executions", "list", "--pipeline", pipeline, "--format", "json").stdout
    executions: list[dict[str, Any]] = json.loads(out)["executions"]
    return executions


def shown(state: Path, ident: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli(state, "executions", "show", ident, "--format", "json").stdout)
    return data


def events(state: Path, *args: str) -> list[dict[str, Any]]:
    text = cli(state, "events", "--format", "jsonl", *args).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def api(state: Path, path: str, **params: Any) -> Any:
    """GET an API path of the running server (for waiting: a CLI call costs a Python start; the
    checks themselves go through the CLI)."""
    url = json.loads((state / "server.json").read_text())["url"]
    token = (state / "admin-token").read_text().strip()
    answer = httpx.get(url + "/api/v1/" + path, params=params, headers={"Authorization": f"Bearer {token}"},
                       timeout=30)
    answer.raise_for_status()
    return answer.json()


def wait(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def ended(state: Path, ident: str, timeout: float = 60) -> dict[str, Any]:
    """The execution `ident` once it has ended, as `executions show` gives it (and `executions
    list` agrees)."""
    wait(f"{ident} to end", lambda: any(e["id"] == ident and e["status"] != "running"
                                        for e in api(state, "executions")["executions"]), timeout)
    detail = shown(state, ident)
    entry = [e for e in listed(state, detail["pipeline"]) if e["id"] == ident]
    assert entry == [{key: detail[key] for key in entry[0]}] and detail["status"] != "running"
    return detail


def finish_reason(detail: dict[str, Any]) -> str:
    """Why the execution ended: its `reason` (executions list and show), which its one
    `execution_finished` event (among show's events) gives too."""
    finished = [e for e in detail["events"] if e["type"] == "execution_finished"]
    assert len(finished) == 1, detail["events"]
    assert finished[0]["data"] == {"status": detail["status"], "reason": detail["reason"]}
    reason: str = detail["reason"] or ""
    return reason


def status_answers(state: Path) -> dict[str, dict[str, Any]]:
    """`status` (every pipeline) still answers; its JSON by pipeline."""
    pipelines = json.loads(cli(state, "status", "--format", "json").stdout)["pipelines"]
    return {p["pipeline"]: p for p in pipelines}


def host_artifacts(state: Path, pipeline: str) -> set[str | None]:
    status = json.loads(cli(state, "status", pipeline, "--format", "json").stdout)
    return {h["artifact"] for s in status["stages"] for t in s["targets"] for h in t["hosts"]}


def kill_pids(*files: Path) -> None:
    for file in files:
        try:
            pid = int(file.read_text().strip())
        except (OSError, ValueError):
            continue
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def commit_steady(steady: Path, text: str) -> str:
    write(steady / "app.txt", text)
    return commit(steady, text.strip())


def released_steady(state: Path, number: int, sha: str) -> None:
    """steady-NUMBER released `sha` through beta."""
    detail = ended(state, f"steady-{number}")
    assert detail["commit"] == sha
    assert detail["status"] == "succeeded", detail
    assert host_artifacts(state, "steady") == {sha[:12]}


def test_faults_of_one_pipeline_leave_the_other_releasing(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    steady = make_repo(tmp_path / "steady", STEADY, record)
    faulty = make_repo(tmp_path / "faulty", faulty_yaml(build="echo compiling; exit 1"), record)
    write(tmp_path / "org" / "acme.yaml", ORG)
    config = tmp_path / "engine.yaml"
    config.write_text(f"""apiVersion: pipewarden/v1
kind: EngineConfig
org_config: org
poll: {{git: 1s, gates: 1s}}
pipelines:
  - repo: {steady}
  - repo: {faulty}
""")
    state = tmp_path / "state"
    child_pid, hook_pid = tmp_path / "hang-child.pid", tmp_path / "hang-hook.pid"
    hang = f"#!/bin/sh\nsleep 300 &\necho $! > {child_pid}\necho $$ > {hook_pid}\nsleep 300\n"
    server = ServerProcess(state, "--config", str(config)).start()
    try:
        # 1. The build command exits 1 (released at first sight, beside steady-1).
        detail = ended(state, "faulty-1")
        assert detail["status"] == "failed" and detail["artifact"] is None and detail["stage"] is None
        assert finish_reason(detail) == ("build: build command 1 (echo compiling; exit 1) exited 1; "
                                         "output in logs/faulty-1/build/command_1.log")
        build = [e["data"] for e in detail["events"] if e["type"] == "build_finished"]
        assert [(b["result"], b["artifact"]) for b in build] == [("failed", None)]
        assert "compiling" in (state / "logs" / "faulty-1" / "build" / "command_1.log").read_text()
        assert ended(state, "steady-1")["status"] == "succeeded"

        # 2. The build runs but leaves no build.artifact.
        write(faulty / "pipeline.yaml", faulty_yaml(build="mkdir -p out && cp app.txt out/"))
        commit(faulty, "builds into out/")
        detail = ended(state, "faulty-2")
        assert detail["status"] == "failed" and detail["artifact"] is None
        assert finish_reason(detail) == ("build: build.artifact 'dist/' does not exist after the build commands "
                                         "(build.commands must create it in the checkout)")

        # 3. A good commit: released through beta.
        write(faulty / "pipeline.yaml", faulty_yaml())
        good = commit(faulty, "fixed build")
        assert ended(state, "faulty-3")["status"] == "succeeded"
        assert host_artifacts(state, "faulty") == {good[:12]}

        # 4. The validate hook hangs, with a child in the background: both are killed at the 3 s
        # deploy.timeout, the host fails, and the stage rolls back by itself to faulty-3's artifact.
        write(faulty / "hooks" / "validate.sh", hang, executable=True)
        write(faulty / "app.txt", "v2\n")
        commit(faulty, "validate hangs")
        released_steady(state, 2, commit_steady(steady, "steady v2\n"))  # meanwhile
        detail = ended(state, "faulty-4")
        assert detail["status"] == "rolled_back", detail
        reason = finish_reason(detail)
        assert re.fullmatch(rf"beta: hook validate on \S+ timed out after 3s; rolled back \(beta-cell -> {good[:12]}\)",
                            reason), reason
        hung = next(e["data"] for e in detail["events"] if e["type"] == "hook" and e["data"]["hook"] == "validate")
        assert (hung["timed_out"], hung["exit_code"], hung["interrupted"]) == (True, None, False)
        assert 3000 <= hung["duration_ms"] < 10000
        assert "killed after the timeout of 3s" in (state / hung["log"]).read_text()
        for pid_file in (hook_pid, child_pid):
            pid = int(pid_file.read_text())
            wait(f"process {pid} of the hung hook's group to be gone", lambda pid=pid: not alive(pid), 10)
        assert [e["data"]["result"] for e in detail["events"] if e["type"] == "rollback_finished"] == ["succeeded"]
        run = detail["stages"][0]["execution"]
        assert run["status"] == "rolled_back"
        assert re.fullmatch(r"hook validate on \S+ timed out after 3s", run["reason"]), run["reason"]
        assert host_artifacts(state, "faulty") == {good[:12]}

        # 5. The same hang with `rollback: manual`: the execution fails, the stage run stays
        # failed (holding the stage in status) and the host is `failed`.
        for pid_file in (hook_pid, child_pid):
            pid_file.unlink()
        write(faulty / "pipeline.yaml", faulty_yaml(rollback="manual"))
        write(faulty / "app.txt", "v3\n")
        commit(faulty, "validate hangs, manual rollback")
        detail = ended(state, "faulty-5")
        assert detail["status"] == "failed"
        assert re.fullmatch(r"beta: hook validate on \S+ timed out after 3s", finish_reason(detail)), detail
        assert not [e for e in detail["events"] if e["type"] == "rollback_started"]
        wait("the hung hook's group to be gone", lambda: not alive(int(child_pid.read_text())), 10)
        beta = status_answers(state)["faulty"]["stages"][0]
        assert (beta["execution"]["id"], beta["execution"]["status"]) == ("faulty-5", "failed")
        assert [h["state"] for t in beta["targets"] for h in t["hosts"]] == ["failed"]

        # 6. The pipeline file becomes invalid: the policy gate fails, listing the finding.
        write(faulty / "hooks" / "validate.sh", "#!/bin/sh\ntrue\n", executable=True)
        write(faulty / "pipeline.yaml", faulty_yaml(rollback="sometimes"))
        commit(faulty, "invalid pipeline file")
        detail = ended(state, "faulty-6")
        assert detail["status"] == "failed" and detail["artifact"] is None
        reason = finish_reason(detail)
        assert reason.startswith("policy: 1 enforce finding: valid-definition at stages[0].rollback: "), reason
        assert "sometimes" in reason
        gates = [e["data"] for e in detail["events"] if e["type"] == "gate"]
        assert [(g["gate"], g["result"], g["code"]) for g in gates] == [("policy", "fail", "enforce_findings")]
        assert gates[0]["inputs"]["enforce"][0]["rule"] == "valid-definition"
        assert not [e for e in detail["events"] if e["type"] == "build_started"]
        # status still shows the newest valid definition.
        assert [s["name"] for s in status_answers(state)["faulty"]["stages"]] == ["beta"]

        # 7. The branch disappears: one branch_missing event, however many polls pass.
        git(faulty, "checkout", "-q", "--detach")
        git(faulty, "branch", "-q", "-D", "main")
        wait("branch_missing", lambda: any(e["type"] == "branch_missing"
                                           for e in api(state, "events", pipeline="faulty")))
        time.sleep(2.5)  # two more polls at least
        missing = [e for e in events(state, "--pipeline", "faulty") if e["type"] == "branch_missing"]
        assert [(e["pipeline"], e["data"]) for e in missing] == [("faulty", {"branch": "main"})]
        assert status_answers(state).keys() == {"steady", "faulty"}
        # It comes back with a new commit (the file fixed): released as usual.
        git(faulty, "checkout", "-q", "-b", "main")
        write(faulty / "pipeline.yaml", faulty_yaml())
        back = commit(faulty, "branch is back")
        detail = ended(state, "faulty-7")
        assert detail["status"] == "succeeded" and detail["commit"] == back, detail

        # 8. faulty moves onto one of steady's hosts: the policy gate checks the fleet rules
        # against the heads of the engine's other pipelines, and the org enforces
        # single-release-process.
        write(faulty / "pipeline.yaml", faulty_yaml().replace('"127.0.0.1:9801"', '"127.0.0.1:9801", "127.0.0.1:9701"'))
        commit(faulty, "shares steady's host")
        detail = ended(state, "faulty-8")
        assert detail["status"] == "failed" and detail["artifact"] is None
        assert finish_reason(detail) == (
            "policy: 1 enforce finding: single-release-process at stages[0].targets[0].hosts[1]: host 127.0.0.1:9701 "
            f"is also deployed by pipeline 'steady' ({steady}@main:pipeline.yaml); a host belongs to one release "
            "process")

        # 9. The repository is moved away while a build runs.
        write(faulty / "pipeline.yaml", faulty_yaml(build="sleep 2 && " + GOOD_BUILD))
        commit(faulty, "slow build")
        # Its build command runs (in the checkout under work/: the clone is done).
        wait("faulty-9's build command", (state / "logs" / "faulty-9" / "build" / "command_1.log").exists)
        moved = faulty.rename(tmp_path / "faulty-moved")
        steady_3 = commit_steady(steady, "steady v3\n")
        detail = ended(state, "faulty-9")
        assert detail["status"] == "failed", detail
        reason = finish_reason(detail)
        assert str(faulty) in reason and "cannot read pipeline.yaml" in reason, reason
        # The server goes on: status answers, and steady still releases.
        assert status_answers(state).keys() == {"steady", "faulty"}
        # A release by hand is refused (exit 1), naming the repository; nothing starts. (The
        # refusal says the branch does not exist: engine/client.py takes any git failure for a
        # missing branch.)
        refused = cli(state, "release", "faulty", check=False)
        assert refused.returncode == 1 and str(faulty) in refused.stderr, refused
        released_steady(state, 3, steady_3)
        assert server.process is not None and server.process.poll() is None
        # The server's log says so once (not a traceback every poll).
        output = server.output()
        assert output.count(f"cannot read the repository {faulty} of pipeline faulty") == 1, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        # The repository comes back: polling goes on, and its next commit is released.
        moved.rename(faulty)
        write(faulty / "pipeline.yaml", faulty_yaml())
        last = commit(faulty, "back in place")
        detail = ended(state, "faulty-10")
        assert detail["status"] == "succeeded" and detail["commit"] == last, detail
        assert f"the repository {faulty} of pipeline faulty can be read again" in server.output()
        cli(state, "status")
        cli(state, "audit", "verify")
    finally:
        server.kill()
        kill_pids(hook_pid, child_pid)
