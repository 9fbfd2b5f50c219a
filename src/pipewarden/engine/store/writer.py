"""The store's writes in a process of their own (the server's and workers' SQLite store).

Why: SQLite has one writer, and within the server every write waited its turn on a lock. In a
burst (100 executions failing at once) the thread holding that lock spent most of its
transaction waiting for the server's GIL, because pysqlite releases the GIL at every statement
and dozens of other threads want it back: a transaction of about 1 ms of work took 10-40 ms and
at worst 150 ms, and every other write queued behind it for seconds (benchmarks/RESULTS.md,
issue 14, "Runs 17-28"). Here the writes run one after another on an interpreter that does
nothing else.

`RemoteWriter` starts `python -c ... URL` running `main` below, a fresh interpreter (never a
fork of a process holding Temporal's threads), joined by its standard input and output. A write is
one frame each way: `(id, method, args, kwargs)` to the writer, which runs that `EngineStore`
method on its own store, and `(id, ok, value)` back (the method's answer, or the exception it
raised). The caller's thread waits for its answer; one reader thread routes the answers. The
writer makes the writes one at a time, the urgent ones among those waiting first (`URGENT`: the
way from a failing gate to a rollback's first hook). Reads
stay in the caller's process: a write is committed before its answer leaves the writer, and WAL
lets readers see it at once.

The writer ignores SIGINT and SIGTERM (a Ctrl-C or a stop of the server's process group must not
end it before the server's last writes) and ends when its input closes: when the server closes
the store, or dies in any way. A writer that died is started again at the next write; the writes
that were waiting for it raise `WriterGone` (an activity is then retried, as after any store error).
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import IO, Any

_LENGTH = struct.Struct(">I")
READY = "ready"
_ENTRY = "import sys; from pipewarden.engine.store.writer import main; sys.exit(main(sys.argv[1:]))"
"""The writer's program (not `-m`: the store package imports this module first)."""


class WriterGone(RuntimeError):
    """The writer process ended (or could not start) before it answered a write."""


def write_frame(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next value, or EOFError when the stream ends (between frames or inside one)."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    size = _LENGTH.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class RemoteWriter:
    """The writer process of the store at `url` (see the module docstring). Thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sending = threading.Lock()
        """One frame at a time into the writer's pipe (taken before `_lock`, never by the answers'
        thread: a sender blocked on a full pipe must not stop the answers being drained, or the
        writer, blocked sending an answer, would never read again)."""
        self._lock = threading.Lock()  # starts and the table of waiting writes
        self._waiting: dict[int, tuple[Future[Any], subprocess.Popen[bytes]]] = {}
        """The writes sent and not answered yet: their future and the process they went to."""
        self._next = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._start()

    def _start(self) -> None:
        """Start the writer and wait for its `ready` (WriterGone when it cannot open the store).
        Called with `_lock` held, or from __init__."""
        process = subprocess.Popen([sys.executable, "-c", _ENTRY, self.url], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE)
        assert process.stdin is not None and process.stdout is not None
        try:
            ready = read_frame(process.stdout)
        except EOFError:
            process.wait()
            raise WriterGone(f"the store's writer for {self.url} could not start "
                             f"(exit {process.returncode}; its error is on the server's stderr)") from None
        if ready != READY:
            process.kill()
            process.wait()
            raise WriterGone(f"the store's writer for {self.url} answered {ready!r} instead of {READY!r}")
        self._process = process
        threading.Thread(target=self._answers, args=(process,), name="pipewarden-store-writer",
                         daemon=True).start()

    def _answers(self, process: subprocess.Popen[bytes]) -> None:
        """Route the writer's answers to the waiting writes until its output ends; then fail the
        writes still waiting for it."""
        assert process.stdout is not None
        try:
            while True:
                ident, ok, value = read_frame(process.stdout)
                with self._lock:
                    sent = self._waiting.pop(ident, None)
                if sent is None:
                    continue
                future = sent[0]
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            pass
        process.wait()
        with self._lock:
            lost = [ident for ident, (_, to) in self._waiting.items() if to is process]
            futures = [self._waiting.pop(ident)[0] for ident in lost]
        for future in futures:
            future.set_exception(WriterGone(f"the store's writer ended (exit {process.returncode}) before it "
                                            "answered; the write may or may not have been made"))

    def call(self, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run `EngineStore.method(*args, **kwargs)` in the writer; its answer or its exception."""
        future: Future[Any] = Future()
        with self._sending:
            with self._lock:
                if self._closed:
                    raise WriterGone("the store is closed")
                # returncode: set by the answers' thread once the writer's output ended (poll()
                # says None while that thread is reaping it)
                if self._process is None or self._process.returncode is not None or self._process.poll() is not None:
                    self._start()
                process = self._process
                assert process is not None and process.stdin is not None
                ident = self._next = self._next + 1
                self._waiting[ident] = (future, process)
            try:
                write_frame(process.stdin, (ident, method, tuple(args), dict(kwargs)))
            except (OSError, ValueError) as error:
                with self._lock:
                    self._waiting.pop(ident, None)
                raise WriterGone(f"the store's writer is gone: {error}") from error
        return future.result()

    def close(self) -> None:
        """End the writer (it finishes the write it is making) and wait for it."""
        with self._lock:
            self._closed = True
            process = self._process
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


URGENT = frozenset({"_record_gates_now", "set_stage_run_status", "_fail_stage_run", "acquire_host_lease",
                    "lease_and_begin_hook_run", "halt_deploy", "put_round_alarm_states"})
"""Writes that the writer makes before the others waiting (with `begin_hook_run` of a host's
first hook): those on the way from a failing gate round, or an alarm that fires, to the first
hook of a rollback (the time to react, issue 14), and a tripwire's halt. In a burst (100
executions failing at once) the writer is the queue: each rollback's hooks add their begin, their
process group and their finish, and in arrival order the first steps of the last rollbacks waited
behind the later hooks of the first ones. Each caller waits for its answer before its next write,
so one thread's writes keep their order; the other writes wait at most for the urgent ones."""


def urgent(method: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether the write `method(**kwargs)` goes before the others waiting (URGENT)."""
    return method in URGENT or (method == "begin_hook_run" and bool(kwargs.get("first")))


Write = tuple[int, str, tuple[Any, ...], dict[str, Any]]
"""A write's frame: (id, store method, args, kwargs)."""


class Pending:
    """The writes received and not made yet: urgent ones first, each kind in arrival order."""

    def __init__(self) -> None:
        self._urgent: collections.deque[Write] = collections.deque()
        self._other: collections.deque[Write] = collections.deque()

    def add(self, write: Write) -> None:
        (self._urgent if urgent(write[1], write[3]) else self._other).append(write)

    def __bool__(self) -> bool:
        return bool(self._urgent or self._other)

    def next(self) -> Write:
        return self._urgent.popleft() if self._urgent else self._other.popleft()


def main(argv: Sequence[str]) -> int:
    """The writer: open the store at argv[0], say `ready`, then run the writes that come, the
    urgent ones among those waiting first (URGENT)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing but frames on the channel
    from pipewarden.engine.store.store import EngineStore

    store = EngineStore(argv[0])
    frames: queue.SimpleQueue[Write | None] = queue.SimpleQueue()
    # A thread of its own reads the pipe, so that what waits is known when a write is picked.
    threading.Thread(target=_read_frames, args=(inp, frames), name="frames", daemon=True).start()
    pending = Pending()
    receiving = True
    try:
        write_frame(out, READY)
        while True:
            if receiving:
                receiving = _receive(frames, pending, wait=not pending)
            if not pending:
                return 0  # the input ended and every write received is made
            ident, method, args, kwargs = pending.next()
            try:
                reply: tuple[int, bool, Any] = (ident, True, getattr(store, method)(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 - sent back to the caller, raised there
                reply = (ident, False, error)
            try:
                write_frame(out, reply)
            except (pickle.PicklingError, TypeError, AttributeError):
                write_frame(out, (ident, False, RuntimeError(f"{type(reply[2]).__name__}: {reply[2]}")))
            except (BrokenPipeError, ValueError):
                return 0  # the server is gone: the write is made, nobody waits for its answer
    finally:
        store.close()


def _receive(frames: queue.SimpleQueue[Write | None], pending: Pending, *, wait: bool) -> bool:
    """Move the frames that arrived into `pending` (waiting for one when `wait`); False once the
    input has ended."""
    try:
        frame = frames.get(block=wait)
        while frame is not None:
            pending.add(frame)
            frame = frames.get_nowait()
    except queue.Empty:
        return True
    return False


def _read_frames(inp: IO[bytes], frames: queue.SimpleQueue[Write | None]) -> None:
    """Every frame of `inp` onto `frames`, then None (its end)."""
    try:
        while True:
            frames.put(read_frame(inp))
    except (EOFError, OSError, ValueError, pickle.UnpicklingError):
        frames.put(None)
