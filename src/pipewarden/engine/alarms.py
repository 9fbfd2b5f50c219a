"""The alarm evaluator of the server (engine.md, "Gates", `alarms`; issue 14).

Every `poll.gates`, for every pipeline the engine releases, it reads every alarm of every stage of
the pipeline's newest valid definition (the one the poller stored) through the metric sources,
with that stage's placeholders (`$__stage`, `$__hosts`, `$__since_deploy` = the poll interval),
steps each alarm's state (domain/gates/alarms.py: `periods` consecutive breaches before firing,
no data not a breach, a source error keeps the state) and stores the states per (pipeline, stage,
alarm) (EngineStore.put_round_alarm_states, one transaction a round). The entry gates and the bake's tripwire only read those
states: one evaluator steps an alarm, so a streak counts evaluations, whatever the number of
executions waiting or baking.

When an alarm of a stage is evaluated for the first time, or starts or stops firing or breaching,
the evaluator calls `notify(stages)` once after its round with every such (pipeline, stage) (the
server wakes the executions waiting at those stages' entries or occupying them), so a bake judges
a firing alarm at once instead of at its next poll: the time to react stays within one
`poll.gates` (plus the reads) from the breach that completes `periods`. One call for all of them,
not one per stage: an alarm shared by 100 pipelines fires for all 100 in one round, and waking
them one by one (each with a store read) spread the woken rounds over 1.5-2.5 s
(benchmarks/RESULTS.md, issue 14, "Runs 49-67").

A stored state older than `STALE_PERIODS` poll intervals means the evaluator is not running (the
server is down, a `pipewarden worker` without a server): the gates then wait (`source_error`,
"alarm NAME was last evaluated at TIME, too long ago to trust"), since a gate that lacks data
never passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime

from pipewarden.engine.domain.gates import alarms as alarms_gate
from pipewarden.engine.sources.base import MetricSource, ReadContext
from pipewarden.engine.store import EngineStore
from pipewarden.engine.wakeups import Stage
from pipewarden.model.view import PipelineView, StageView, pipeline_view

log = logging.getLogger("pipewarden.alarms")

READERS = 8
"""Stages whose alarms are read at the same time."""
STALE_PERIODS = 3
"""A stored alarm state older than this many poll intervals is not trusted (see the docstring)."""


class AlarmEvaluator:
    """Steps and stores the alarm states of `pipelines` (None: every pipeline the store knows)."""

    def __init__(self, store: EngineStore, sources: MetricSource, pipelines: Sequence[str] | None, *,
                 poll_seconds: int, notify: Callable[[Sequence[Stage]], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.sources = sources
        self.pipelines = None if pipelines is None else tuple(pipelines)
        self.poll_seconds = poll_seconds
        self.notify = notify
        self.changed: list[Stage] = []
        """(pipeline, stage) whose alarms were new, or started or stopped firing or breaching, in the
        last round."""

    def round(self, now: datetime) -> int:
        """One evaluation of every alarm of every stage; how many alarm states were stored. A
        pipeline whose definition cannot be read is skipped (logged): the others go on. Stages are
        read READERS at a time, so a slow source (a command of up to 30 s, a Prometheus timing
        out) delays no other stage's alarms beyond its own. The stored states are read once and
        the new ones written in one transaction for the whole round: one write per round, not one
        per stage, which in a busy server queued behind every execution's writes (rounds of 20 s
        and more at 100 pipelines: benchmarks/RESULTS.md, issue 14)."""
        self.changed = []
        records = {record.name: record for record in self.store.pipelines()}  # one read, not one per pipeline
        names = self.pipelines if self.pipelines is not None else list(records)
        units: list[tuple[str, PipelineView, StageView]] = []
        for name in names:
            try:
                record = records.get(name)
                if record is None or record.definition is None:
                    continue
                view = pipeline_view(record.definition)
            except Exception:
                log.exception("alarms of pipeline %s could not be evaluated", name)
                continue
            units.extend((name, view, stage) for stage in view.stages if stage.alarms)
        if not units:
            return 0
        stored = self.store.all_alarm_states()

        def one(unit: tuple[str, PipelineView, StageView]) -> dict[str, alarms_gate.AlarmState] | None:
            return self._stage(unit[0], unit[1], unit[2], now, stored.get((unit[0], unit[2].name), {}))

        if len(units) == 1:
            results = [one(units[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(READERS, len(units)), thread_name_prefix="alarms") as pool:
                results = list(pool.map(one, units))
        stepped = {(name, stage.name): states for (name, _, stage), states in zip(units, results, strict=True)
                   if states is not None}
        try:
            self.store.put_round_alarm_states(stepped, now=now)
        except Exception:
            log.exception("the alarm states of a round could not be stored")
            return 0
        for (name, stage), states in stepped.items():
            before = {n: (s.firing, s.breaching) for n, (s, _) in stored.get((name, stage), {}).items()}
            if any(n not in before or before[n] != (s.firing, s.breaching) for n, s in states.items()):
                self.changed.append((name, stage))
        return sum(len(states) for states in stepped.values())

    def _stage(self, name: str, view: PipelineView, stage: StageView, now: datetime,
               stored: dict[str, tuple[alarms_gate.AlarmState, datetime]]) -> dict[str, alarms_gate.AlarmState] | None:
        """Read and step the alarms of one stage from their `stored` states; None (logged) when
        that fails (its stored states then stay as they were)."""
        try:
            intervals = {s.name: float(s.interval_seconds) for s in view.synthetics if s.interval_seconds is not None}
            context = ReadContext(stage.name, stage.hosts, now, pipeline=name, poll_seconds=self.poll_seconds,
                                  alarm=True, synthetic_intervals=intervals)
            states: dict[str, alarms_gate.AlarmState] = {}
            for alarm_name in stage.alarms:
                alarm = view.alarms.get(alarm_name)
                if alarm is None:
                    continue
                previous = stored.get(alarm_name)
                reading = self.sources.read(alarm.metric, context)
                states[alarm_name] = alarms_gate.step(None if previous is None else previous[0],
                                                      reading.observation(), alarm)
        except Exception:
            log.exception("alarms of pipeline %s stage %s could not be evaluated", name, stage.name)
            return None
        return states

    async def run(self, stop: asyncio.Event, clock: Callable[[], datetime]) -> None:
        """A round at once, then every `poll_seconds` (from the start of one round to the next)
        until `stop`; one failed round never stops the loop."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                await asyncio.to_thread(self.round, clock())
                if self.notify is not None and self.changed:
                    await self.notify(list(self.changed))
            except Exception:
                log.exception("alarm round failed")
            left = self.poll_seconds - (loop.time() - started)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, left))
