"""`pipewarden server` as a process: it starts the embedded Temporal, answers health, writes
server.json and the admin token, refuses a second server on its state dir, stops everything on
SIGTERM, and leaves no Temporal behind when it is killed with SIGKILL."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_helpers import ServerProcess, alive, wait_gone

pytestmark = pytest.mark.usefixtures("needs_temporal")


def test_server_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = ServerProcess(state).start()
    try:
        info = server.info
        assert info["pid"] == server.process.pid if server.process else False
        assert info["url"].startswith("http://127.0.0.1:")
        assert info["temporal"].startswith("127.0.0.1:")
        assert httpx.get(info["url"] + "/api/v1/health", timeout=5).json() == {"status": "ok"}
        token = state / "admin-token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert len(token.read_text().strip()) >= 32
        # The API wants the token everywhere but health.
        assert httpx.get(info["url"] + "/api/v1/pipelines", timeout=5).status_code == 401
        assert "listening on " + info["url"] in server.output()
        temporal = server.temporal_pid()
        assert alive(temporal)
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert wait_gone(temporal, timeout=15), "Temporal outlived a stopped server"
    assert not (state / "server.json").exists()


def test_second_server_on_one_state_dir_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with ServerProcess(state):
        second = subprocess.run([sys.executable, "-m", "pipewarden", "server", "--state-dir", str(state),
                                 "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 2
        assert "another pipewarden server is running on this state dir" in second.stderr
        assert "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1


def test_killed_server_leaves_no_temporal_and_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = ServerProcess(state).start()
    temporal = server.temporal_pid()
    server.kill()
    # The kernel's parent-death signal stops the embedded Temporal by itself.
    assert wait_gone(temporal, timeout=20), "Temporal outlived its killed server"
    with ServerProcess(state) as again:
        assert httpx.get(again.url + "/api/v1/health", timeout=5).status_code == 200
        assert again.temporal_pid() != temporal


def test_bad_listen_is_one_line_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pipewarden", "server", "--state-dir", str(tmp_path / "s"),
                             "--listen", "nonsense"], capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ})
    assert result.returncode == 2
    assert "--listen" in result.stderr and "Traceback" not in result.stderr
