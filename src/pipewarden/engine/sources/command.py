"""`{source: command, command}`: a shell command that prints one number (engine.md, "Metric
references").

It runs as builds and hooks do (activities/process.py's guard: `/bin/sh -c`, a process group of
its own that dies with the worker, stdin closed) in the context's directory, with the context's
environment (engine.md's "Environment"; the worker's own when none is given) plus:

- `PIPEWARDEN_SINCE`: Unix seconds (whole, rounded down) of the start of the counting window,
  the deploy's end (for an alarm: `now - poll.gates`; unset before the deploy finished);
- `PIPEWARDEN_STAGE` and `PIPEWARDEN_HOSTS` (space-separated `host:port`), unless the environment
  given sets them: so that a command, like a query's `$__hosts`, can count the stage's own hosts.

Within 30 s. Its standard output, stripped of surrounding whitespace: empty is no data; one
number (`42`, `-1.5`, `3e3`) is the value; anything else (several numbers, text, NaN, an
infinity) is a source error quoting it. A non-zero exit or a timeout is a source error with the
end of its standard error. Unlike a `start` hook, a metric command has no business leaving
anything running: its whole process group is killed once it exits.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from pipewarden.engine.activities.process import command_argv, kill_group
from pipewarden.engine.sources.base import ReadContext, Reading, describe
from pipewarden.model.view import CommandMetric, MetricRef

SOURCE = "command"
TIMEOUT_SECONDS = 30.0
_READ_LIMIT = 64 * 1024
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class CommandSource:
    """Runs a command reference within `timeout_seconds` (30 s as engine.md says; shorter in tests)."""

    def __init__(self, *, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.timeout_seconds = timeout_seconds

    def read(self, ref: MetricRef, context: ReadContext) -> Reading:
        if not isinstance(ref, CommandMetric):
            return Reading.failed(f"not a command reference: source {ref.source}", query=describe(ref),
                                  observed=context.now, source=SOURCE)
        env = dict(os.environ if context.env is None else context.env)
        since = context.since
        if since is not None:
            env["PIPEWARDEN_SINCE"] = str(math.floor(since.timestamp()))
        env.setdefault("PIPEWARDEN_STAGE", context.stage)
        env.setdefault("PIPEWARDEN_HOSTS", " ".join(context.hosts))
        value, error = self.run(ref.command, env=env, cwd=context.cwd)
        if error is not None:
            return Reading.failed(error, query=ref.command, observed=context.now, source=SOURCE)
        return Reading.of(value, query=ref.command, observed=context.now, source=SOURCE)

    def run(self, command: str, *, env: dict[str, str], cwd: Path | None) -> tuple[float | None, str | None]:
        """(value, None), (None, None) for empty output, or (None, reason)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            # Files, not pipes: a background child holding a pipe open cannot keep the read
            # waiting, and no output size can fill a pipe and stall the command.
            try:
                process = subprocess.Popen(command_argv(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=err, start_new_session=True)
            except OSError as error:
                return None, f"the command cannot start: {error}"
            try:
                code: int | None = process.wait(timeout=self.timeout_seconds)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                kill_group(process.pid)
                process.wait()
            stdout = _read(out)
            stderr = _read(err)
        if code is None:
            return None, f"the command did not finish within {self.timeout_seconds:g}s{_tail(stderr)}"
        if code != 0:
            return None, f"the command exited {code}{_tail(stderr)}"
        return parse_output(stdout)


def parse_output(output: str) -> tuple[float | None, str | None]:
    """A command's standard output read as engine.md says: empty is no data, one number the value,
    anything else an error quoting (the start of) it."""
    text = output.strip()
    if not text:
        return None, None
    if _NUMBER.fullmatch(text) is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        return None, f"the command printed {shown!r}, not one number"
    value = float(text)
    if not math.isfinite(value):
        return None, f"the command printed {text!r}, not a finite number"
    return value, None


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read(_READ_LIMIT).decode("utf-8", errors="replace")


def _tail(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return f": {last if len(last) <= 200 else last[:197] + '...'}"
