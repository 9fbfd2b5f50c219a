"""Builders for the workflow tests: real git repositories whose hook scripts record what they do,
and a worker of the engine on the session's dev server."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.client import Client

from pipewarden.engine.activities.artifacts import ArtifactStore
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.client import start_execution
from pipewarden.engine.contract import ExecutionOutcome
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore
from pipewarden.engine.worker import workers

RESULT_TIMEOUT = 60

STAGE = """  - name: {name}
    type: {type}
    targets: [{{name: {target}, hosts: ["{h1}", "{h2}"]}}]
    deploy:
      hooks: {{stop: ./hooks/hook.sh, install: ./hooks/hook.sh, start: ./hooks/hook.sh, validate: ./hooks/validate.sh}}
      min_healthy: 50%
{tests}    bake: {{duration: 1s}}
    rollback: automatic
{extra}"""
TESTS = """    tests:
      - {name: smoke, type: integration, command: ./hooks/test.sh}
"""


def pipeline_yaml(stages: int, *, beta_extra: str = "", build: str = "mkdir -p dist && cp app.txt dist/") -> str:
    text = """apiVersion: pipewarden/v1
kind: Pipeline
metadata:
  name: demo-app
  team: demo
build:
  commands: ["{build}"]
  artifact: dist/
  tests:
    - {name: unit, type: unit, command: "test -f dist/app.txt"}
stages:
""".replace("{build}", build)
    text += STAGE.format(name="beta", type="preprod", target="beta-cell", h1="127.0.0.1:9301", h2="127.0.0.1:9302",
                         tests=TESTS, extra=beta_extra)
    if stages > 1:
        text += STAGE.format(name="prod", type="prod", target="cell-1", h1="127.0.0.1:9401", h2="127.0.0.1:9402",
                             tests="", extra="")
    return text


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def write(path: Path, text: str, *, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(0o755)


def make_repo(tmp_path: Path, record: Path, stages: int, **pipeline: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test Dev")
    git(repo, "config", "user.email", "dev@example.com")
    write(repo / "pipeline.yaml", pipeline_yaml(stages, **pipeline))
    write(repo / "app.txt", "v1\n")
    line = ('echo "$PIPEWARDEN_STAGE $PIPEWARDEN_TARGET $PIPEWARDEN_HOST $PIPEWARDEN_HOOK $PIPEWARDEN_ARTIFACT '
            f'rollback=$PIPEWARDEN_ROLLBACK" >> {record}\n')
    write(repo / "hooks" / "hook.sh", "#!/bin/sh\n" + line, executable=True)
    write(repo / "hooks" / "validate.sh", "#!/bin/sh\n" + line + 'test "$(cat "$PIPEWARDEN_ARTIFACT_DIR/app.txt")" '
          '= "$(cat app.txt)"\n', executable=True)
    write(repo / "hooks" / "test.sh", "#!/bin/sh\n"
          f'echo "$PIPEWARDEN_STAGE test $PIPEWARDEN_TEST $PIPEWARDEN_ARTIFACT hosts=$PIPEWARDEN_HOSTS" >> {record}\n',
          executable=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def packed_repo(tmp_path: Path) -> tuple[Path, Path, str, Path]:
    """A one-stage repository (`make_repo`) whose head is built and packed by hand (its artifact
    `dist/app.txt` = v1) in a state dir, for activities run on their own: (repo, state dir,
    commit, the hooks' record file)."""
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    commit = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"
    artifacts = ArtifactStore(state)
    checkout = artifacts.fresh_checkout(str(repo), commit, commit[:12])
    (checkout / "dist").mkdir()
    (checkout / "dist" / "app.txt").write_text("v1\n")
    artifacts.pack(checkout / "dist", commit[:12], commit, author="Test Dev", committer_time="2026-11-30T00:00:00Z",
                   pipeline_path="pipeline.yaml", document=None)
    return repo, state, commit, record


Interact = Callable[[Client, str], Awaitable[None]]


async def release(server: DevServer, store: EngineStore, state: Path, repo: Path, commits: list[str],
                  interact: Interact | None = None) -> list[ExecutionOutcome]:
    """Run a worker and release `commits` one after the other; their outcomes. `interact(client,
    execution)` runs beside each execution (signals)."""
    client = await Client.connect(server.address)
    prefix = f"test-{state.parent.name}-"
    outcomes: list[ExecutionOutcome] = []
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with AsyncExitStack() as stack:
            for worker in workers(client, EngineActivities(store, state), executor=executor, task_queue_prefix=prefix):
                await stack.enter_async_context(worker)
            for commit in commits:
                _, handle = await start_execution(client, store, "demo-app", str(repo), commit, queue_prefix=prefix,
                                                  poll_gates_seconds=1)
                if interact is not None:
                    await asyncio.wait_for(interact(client, handle.id), RESULT_TIMEOUT)
                result: Any = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
                outcomes.append(ExecutionOutcome(**result) if isinstance(result, dict) else result)
    return outcomes


