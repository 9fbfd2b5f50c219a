"""Write-behind of the gate evaluations that change nothing but their latest values.

A stage run keeps each gate's latest evaluation (`gate_evaluations`: result, code, reason, until,
inputs, when evaluated) and writes a `gate` event only when the result or the code changes
(domain/gates/base.py, `event_needed`). Every other round of a waiting entry or a bake changes
only the row's latest values: the counts in the reason, the inputs, `evaluated`. With 100
executions baking at `poll.gates` 2 s those were 50 write transactions a second, each queued for
the store's one writer and holding it for 2-25 ms while its thread waited for the GIL: the writer
was busy 40-90 % of the time with nothing to record but counters, and the writes that matter
(a failed round's event, a rollback's status, its first hook) queued behind them for seconds
(benchmarks/RESULTS.md, issue 14, "write stats").

`PendingGates` keeps those latest values in memory instead, the newest per (stage run, gate), and
a thread of its own writes them every `seconds` in one transaction, one statement for all. What
that costs: readers in other processes (`status` from the CLI, the benchmark) see the latest
values up to `seconds` late, and a crash loses at most the last `seconds` of them. Nothing else:
a change of result or code, the first evaluation and every event are written at once by the
caller as before; the next round writes the latest values again; the store's own
`gate_evaluations` reads them through `newest`. A flushed row never goes back in time: its update
applies only where the stored evaluation is older (a round recorded at once in between wins).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger("pipewarden.store")

Key = tuple[int, str]
"""(stage run id, gate)"""

LATEST_FIELDS = ("reason", "until", "inputs", "evaluated")
"""The columns a pending evaluation carries: its result and code are the stored ones."""


class PendingGates:
    """The newest unwritten latest values per (stage run, gate), written by `flush` (given the
    rows, each a mapping with `stage_run`, `gate` and LATEST_FIELDS; it raises on a failed
    write) every `seconds` from the first `put` on, and by `close`. Thread-safe."""

    def __init__(self, flush: Callable[[Sequence[Mapping[str, Any]]], None], seconds: float) -> None:
        self._write = flush
        self.seconds = seconds
        self._lock = threading.Lock()
        self._pending: dict[Key, dict[str, Any]] = {}
        self._flushing = threading.Lock()  # one flush at a time: the thread's and close()'s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, run_id: int, gate: str, values: Mapping[str, Any]) -> None:
        """Keep `values` (LATEST_FIELDS) as the newest of (run_id, gate) unless a newer one waits."""
        row = {"stage_run": run_id, "gate": gate, **{name: values[name] for name in LATEST_FIELDS}}
        with self._lock:
            held = self._pending.get((run_id, gate))
            if held is None or held["evaluated"] <= row["evaluated"]:
                self._pending[(run_id, gate)] = row
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="pipewarden-gates-flush", daemon=True)
                self._thread.start()

    def drop(self, run_id: int, gates: Sequence[str]) -> None:
        """Forget what waits for `gates` of `run_id`: the caller writes newer values at once."""
        with self._lock:
            for gate in gates:
                self._pending.pop((run_id, gate), None)

    def newest(self, run_id: int) -> dict[str, dict[str, Any]]:
        """gate -> the values waiting for `run_id` (LATEST_FIELDS), for readers in this process."""
        with self._lock:
            return {gate: dict(row) for (run, gate), row in self._pending.items() if run == run_id}

    def flush(self) -> int:
        """Write what waits now; how many rows. On a failed write the rows wait again (unless a
        newer value came meanwhile) and the error is raised."""
        with self._flushing:
            with self._lock:
                rows, self._pending = list(self._pending.values()), {}
            if not rows:
                return 0
            try:
                self._write(rows)
            except BaseException:
                with self._lock:
                    for row in rows:
                        held = self._pending.get((row["stage_run"], row["gate"]))
                        if held is None or held["evaluated"] < row["evaluated"]:
                            self._pending[(row["stage_run"], row["gate"])] = row
                raise
            return len(rows)

    def close(self) -> None:
        """Stop the thread and write what waits (logged, not raised, when that fails)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except Exception:
            log.exception("the latest gate evaluations could not be written at close")

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.flush()
            except Exception:  # the store unreachable for a moment: the rows wait for the next turn
                log.exception("the latest gate evaluations could not be written; retrying in %ss", self.seconds)
