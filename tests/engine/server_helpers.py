"""`pipewarden server` as a real process for the tests: started in its own process group, waited for
through its `server.json` and health endpoint, stopped with SIGTERM or killed with SIGKILL, and
never left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import httpx

START_TIMEOUT = 120


class ServerProcess:
    """One `pipewarden server` run on `state_dir` (port 0: a free one)."""

    def __init__(self, state_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.args = list(args)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = state_dir.parent / f"{state_dir.name}-server.log"

    def start(self, *, wait: bool = True) -> Self:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "server.json").unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipewarden", "server", "--state-dir", str(self.state_dir),
                 "--listen", "127.0.0.1:0", *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "server.json").read_text())
        return data

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            if (self.state_dir / "server.json").exists():
                try:
                    if httpx.get(self.url + "/api/v1/health", timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"server not healthy within {timeout}s:\n{self.output()[-3000:]}")

    def temporal_pid(self) -> int | None:
        try:
            return int((self.state_dir / "temporal.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM to the server's group; its return code."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise AssertionError(f"server did not stop within {timeout}s:\n{self.output()[-3000:]}") from None
        self.process = None
        return process.returncode

    def kill(self) -> None:
        """SIGKILL to the server's whole process group (a crash)."""
        process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        wait_gone(self.temporal_pid())


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def wait_gone(pid: int | None, timeout: float = 30) -> bool:
    """True once `pid` is gone (or a zombie); SIGKILLs it after `timeout` so no test leaves it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return False


def single_pipeline(tmp_path: Path, pipeline_yaml: str) -> tuple[Path, str, Path]:
    """A git repository holding `pipeline_yaml`, an `app.txt` and a hook `ok.sh` that exits 0,
    and an EngineConfig releasing it (polls of 1 s): (repository, its head, the config file)."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.name", "Test Dev")
    git("config", "user.email", "dev@example.com")
    (repo / "pipeline.yaml").write_text(pipeline_yaml)
    (repo / "app.txt").write_text("v1\n")
    (repo / "ok.sh").write_text("#!/bin/sh\nexit 0\n")
    (repo / "ok.sh").chmod(0o755)
    git("add", "-A")
    git("commit", "-q", "-m", "v1")
    config = tmp_path / "engine.yaml"
    config.write_text(f"apiVersion: pipewarden/v1\nkind: EngineConfig\npoll: {{git: 1s, gates: 1s}}\n"
                      f"pipelines:\n  - repo: {repo}\n")
    return repo, git("rev-parse", "HEAD"), config
