"""The automatic rollbacks that bake activities run in this process (patch `bake-rolls-back`).

A bake (A_BAKE) is an async activity; a rollback blocks (the store, hook processes), so each runs
on a thread of its own. The bake waits for it heartbeating, and does not stop when its workflow
stops waiting for it (a `wake` or `cancel` replaces a bake at once, TRY_CANCEL): a rollback, once
begun, runs to its end, as an A_ROLL_BACK does. Whoever asks next for that stage run's rollback
(the bake that replaced this one, or the workflow's A_ROLL_BACK `adopt`) finds it here by the
stage run's id and waits for the same result. On worker shutdown the bake stops waiting (the
process is going away; a retry of the bake carries the rollback on with the same keys).

The threads are daemons: a process that exits does not wait for a rollback's hooks, exactly as
a process that dies; the hook runs it began are then found `interrupted` by whoever carries on.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")

HEARTBEATS_ELSEWHERE: contextvars.ContextVar[bool] = contextvars.ContextVar("heartbeats_elsewhere", default=False)
"""True on a rollback's thread: the async bake waiting for it heartbeats (an async activity's
`activity.heartbeat` may only be called on its event loop)."""


class Rollbacks:
    """The rollbacks running in this process, by stage run id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, Future[object]] = {}

    def running(self, run_id: int) -> Future[object] | None:
        """The rollback of stage run `run_id` running here, or None."""
        with self._lock:
            return self._running.get(run_id)

    def start(self, run_id: int, body: Callable[[], T]) -> Future[T]:
        """Run `body` (the rollback) on a daemon thread with the caller's context (the activity's,
        for its keys and attempt), unless one of `run_id` already runs here: then that one's
        future. The entry is dropped once `body` returned (its writes are then in the store)."""
        with self._lock:
            found = self._running.get(run_id)
            if found is not None:
                return found  # type: ignore[return-value]
            future: Future[T] = Future()
            self._running[run_id] = future  # type: ignore[assignment]
        context = contextvars.copy_context()
        context.run(HEARTBEATS_ELSEWHERE.set, True)

        def run() -> None:
            try:
                result = context.run(body)
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits
                self._drop(run_id)
                future.set_exception(error)
            else:
                self._drop(run_id)
                future.set_result(result)

        threading.Thread(target=run, name=f"pipewarden-rollback-{run_id}", daemon=True).start()
        return future

    def _drop(self, run_id: int) -> None:
        with self._lock:
            self._running.pop(run_id, None)


async def finishing(future: Future[T], heartbeat_seconds: float) -> T:
    """`future`'s result, heartbeating the current (async) activity every `heartbeat_seconds`
    while waiting. Cancelling the activity does not stop the wait (the rollback goes on, and its
    result is still the answer), except on worker shutdown: then asyncio.CancelledError."""
    waiting = asyncio.wrap_future(future)
    while True:
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), timeout=heartbeat_seconds)
        except TimeoutError:
            activity.heartbeat()
        except asyncio.CancelledError:
            if activity.is_worker_shutdown():
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the workflow stopped waiting; the rollback's end is still the answer
