"""Running one command of a build, hook or test: `/bin/sh -c COMMAND` in a directory, with an
environment, stdin closed, stdout and stderr to a log file, in a process group of its own that is
killed whole (SIGKILL) at the timeout. A command that ends by itself keeps whatever it started in
the background (a `start` hook leaves its service running).

A command dies with the process that runs it (engine.md: when the server is killed outright "its
children stop too"): the group's leader is a small `sh` that Linux sends SIGTERM when its parent
dies (`setpriv --pdeathsig`, util-linux, on every Debian), and whose trap then SIGKILLs the whole
group. Without that, a hook cut off by a crash would go on running and finish its work unrecorded,
and then run again as attempt 2 beside its own effects.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcessResult:
    exit_code: int | None
    """None when it timed out."""
    timed_out: bool
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group (a leftover of a run a crash cut off); gone already is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


TICK_SECONDS = 1.0

# `$1` is the command; `wait` returns at once when the trapped SIGTERM arrives (POSIX), and
# `kill -KILL 0` takes the whole group, the leader included.
_GROUP_GUARD = 'trap "kill -KILL 0" TERM; /bin/sh -c "$1" & wait $!'


@cache
def _setpriv() -> str | None:
    return shutil.which("setpriv") if sys.platform.startswith("linux") else None


def command_argv(command: str) -> list[str]:
    """The argv that runs `command` under the group guard (see the module docstring)."""
    guarded = ["/bin/sh", "-c", _GROUP_GUARD, "pipewarden-command", command]
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig", "TERM", *guarded] if setpriv else guarded


def run_command(command: str, *, cwd: Path, env: Mapping[str, str], log: Path, timeout_seconds: float,
                on_start: Callable[[int], None] | None = None,
                on_tick: Callable[[], None] | None = None) -> ProcessResult:
    """Run `command` to its end or its timeout; `on_start(pgid)` is called once it runs (the
    caller records the group so that a later attempt can kill it after a crash), `on_tick()`
    about every second while it runs (the activity's heartbeat)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "ab") as out:
        process = subprocess.Popen(command_argv(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            if on_start is not None:
                on_start(process.pid)
            code, timed_out = _wait(process, started + timeout_seconds, on_tick)
            if timed_out:
                kill_group(process.pid)
        finally:
            if process.poll() is None:
                # Only on an error of our own here; a command that ended normally keeps what it
                # started on purpose (a `start` hook leaves its service running).
                kill_group(process.pid)
                process.wait()
    if timed_out:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"\n[pipewarden] killed after the timeout of {timeout_seconds:g}s\n")
    return ProcessResult(code, timed_out, int((time.monotonic() - started) * 1000))


def _wait(process: subprocess.Popen[bytes], deadline: float,
          on_tick: Callable[[], None] | None) -> tuple[int | None, bool]:
    """The exit code, or (None, True) once the monotonic `deadline` passes.

    Waits on a pidfd (Linux 5.3+) where there is one: `Popen.wait(timeout)` polls with sleeps of
    up to 50 ms, and with a hundred rollbacks' hooks running at once those wake-ups competed for
    the interpreter with the rollbacks still on their way to their first hook (issue 14)."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux, or an old kernel: Popen's own polling
        return _poll(process, deadline, on_tick)
    try:
        waiting = select.poll()
        waiting.register(pidfd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, True
            if waiting.poll(max(1, math.ceil(min(TICK_SECONDS, remaining) * 1000))):
                return process.wait(), False
            if on_tick is not None:
                on_tick()
    finally:
        os.close(pidfd)


def _poll(process: subprocess.Popen[bytes], deadline: float,
          on_tick: Callable[[], None] | None) -> tuple[int | None, bool]:
    """`_wait` through Popen's timed wait."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, True
        try:
            return process.wait(timeout=min(TICK_SECONDS, remaining)), False
        except subprocess.TimeoutExpired:
            if on_tick is not None:
                on_tick()
