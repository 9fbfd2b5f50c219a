"""The progress bar: on a terminal for long runs; silent with --quiet or when stderr is not a terminal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import good_pipeline
from pipewarden.cli.progress import MIN_FILES

pty = pytest.importorskip("pty")  # a pseudo-terminal stands in for the user's terminal (POSIX)


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    for i in range(MIN_FILES):
        folder = root / f"svc{i:04d}"
        folder.mkdir()
        text = good_pipeline(("checkout-service", f"svc{i:04d}")).replace("127.0.0.1:", f"10.0.{i // 200}.{i % 200}:")
        (folder / "pipeline.yaml").write_text(text)
    return root


def run_with_terminal_stderr(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; (exit code, stdout, stderr).

    stdout goes to a file, not a pipe: nobody reads a pipe while the terminal is being read,
    and a report bigger than the pipe's buffer would block the child."""
    try:
        leader, follower = pty.openpty()
    except OSError as error:
        pytest.skip(f"no pseudo-terminal here: {error}")
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipewarden", *args], stdout=out, stderr=follower, stdin=subprocess.DEVNULL
        )
        os.close(follower)
        seen = bytearray()
        deadline = time.monotonic() + 120
        while True:
            ready, _, _ = select.select([leader], [], [], max(deadline - time.monotonic(), 0))
            if not ready:  # never hang the suite: a stuck run fails the test
                child.kill()
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closes when the child exits
                break
            if not chunk:
                break
            seen.extend(chunk)
        code = child.wait(timeout=120)
        os.close(leader)
        out.seek(0)
        stdout = out.read()
    return code, stdout.decode(), seen.decode(errors="replace")


def test_a_long_run_on_a_terminal_shows_progress_and_clears_it(big_fleet: Path) -> None:
    code, stdout, stderr = run_with_terminal_stderr("check", str(big_fleet), "--no-cache", "--format", "json")
    assert code == 0, stderr
    assert f"{MIN_FILES}/{MIN_FILES} pipelines" in stderr and "[" in stderr
    assert "\r" + " " * 79 + "\r" in stderr.split(f"{MIN_FILES}/{MIN_FILES} pipelines")[-1]  # then wiped
    assert '"findings"' in stdout  # the output itself is untouched by the bar


def test_quiet_or_no_terminal_means_no_bar(big_fleet: Path) -> None:
    _, _, on_terminal_quiet = run_with_terminal_stderr("check", str(big_fleet), "--no-cache", "--format", "json", "-q")
    assert "pipelines" not in on_terminal_quiet
    piped = subprocess.run(
        [sys.executable, "-m", "pipewarden", "check", str(big_fleet), "--no-cache", "--format", "json"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert piped.returncode == 0 and "pipelines" not in piped.stderr and "\r" not in piped.stderr
