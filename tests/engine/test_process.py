"""Running build, hook and test commands: the timeout kills the whole process group; stdin is
closed; the output goes to the log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipewarden.engine.activities import process
from pipewarden.engine.activities.process import run_command


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its parent's wait counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = run_command(f"sleep 60 & echo $! > {pidfile}; sleep 60", cwd=tmp_path, env=dict(os.environ),
                         log=tmp_path / "logs" / "hook.log", timeout_seconds=1)
    assert result.timed_out and result.exit_code is None and not result.ok
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert "killed after the timeout of 1s" in (tmp_path / "logs" / "hook.log").read_text()


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "popen-polling"])
def test_the_wait_ticks_while_the_command_runs_and_returns_its_exit_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: bool) -> None:
    """Waiting on a pidfd where the kernel has them (no polling), else Popen's timed wait: either
    way the heartbeat ticks about every TICK_SECONDS and the exit code comes back."""
    polls: list[object] = []
    if pidfd:
        try:
            os.close(os.pidfd_open(os.getpid()))
        except (AttributeError, OSError):
            pytest.skip("no pidfd here (Linux before 5.3, or not Linux): the fallback case covers it")
        real_poll = process.select.poll

        def watched() -> object:
            polls.append(1)
            return real_poll()

        monkeypatch.setattr(process.select, "poll", watched)
    else:
        def unsupported(pid: int) -> int:
            raise OSError("pidfd_open: not supported here")

        monkeypatch.setattr(os, "pidfd_open", unsupported, raising=False)
    monkeypatch.setattr(process, "TICK_SECONDS", 0.1)
    ticks: list[float] = []
    result = run_command("sleep 0.6; exit 3", cwd=tmp_path, env=dict(os.environ), log=tmp_path / "out.log",
                         timeout_seconds=10, on_tick=lambda: ticks.append(time.monotonic()))
    assert (result.exit_code, result.timed_out) == (3, False)
    assert len(ticks) >= 2  # 0.6 s of a 0.1 s tick: about 6 (more when the machine is slow to start it)
    assert len(polls) == (1 if pidfd else 0)  # the pidfd wait ran, or Popen's own


def test_stdin_is_closed_and_output_logged(tmp_path: Path) -> None:
    result = run_command("cat; echo done; echo err >&2; exit 4", cwd=tmp_path, env=dict(os.environ),
                         log=tmp_path / "out.log", timeout_seconds=10)
    assert (result.exit_code, result.timed_out) == (4, False)
    assert (tmp_path / "out.log").read_text() == "done\nerr\n"


def test_a_command_dies_with_the_process_that_runs_it(tmp_path: Path) -> None:
    """The runner is killed with SIGKILL (a crash): the command's whole group stops at once, so
    nothing it would have done afterwards happens (it is then re-run as attempt 2, not finished
    unrecorded)."""
    import signal
    import subprocess
    import sys

    pidfile, done = tmp_path / "child.pid", tmp_path / "done"
    runner = subprocess.Popen([sys.executable, "-c", (
        "import os, pathlib; from pipewarden.engine.activities.process import run_command; "
        f"run_command('sleep 60 & echo $! > {pidfile}; sleep 3; touch {done}', cwd=pathlib.Path({str(tmp_path)!r}), "
        f"env=dict(os.environ), log=pathlib.Path({str(tmp_path / 'log')!r}), timeout_seconds=60)")],
        start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        background = int(pidfile.read_text())
        os.killpg(runner.pid, signal.SIGKILL)  # the runner's own group only: the command has its own
        runner.wait()
        deadline = time.monotonic() + 5
        while _alive(background):
            assert time.monotonic() < deadline, "the command's group outlived its runner"
            time.sleep(0.05)
        time.sleep(3.5)
        assert not done.exists()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
