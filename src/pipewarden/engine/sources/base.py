"""The one interface of metric sources: `read(ref, context) -> Reading` (engine.md, "Metric
references").

A source never raises for what it reads: a timeout, a refused connection, a bad answer or a
failing command is a `Reading` with `error` set and the reason, which the gates turn into a WAIT
with code `source_error` (never a pass, never a crash, never a rollback). No data (an empty
result, empty output) is a reading with neither value nor error.

`ReadContext` carries what a reference's placeholders and environment need: the stage, its hosts
(`host:port` as the pipeline writes them), when its deploy finished, the clock, the `poll.gates`
interval and, for commands, the environment and working directory. Two kinds of read:

- **datapoints** (`alarm=False`): counted since the deploy finished: `$__since_deploy` is the
  time from `deploy_finished` to `now`, `PIPEWARDEN_SINCE` and a synthetic's `since` are
  `deploy_finished`;
- **alarm** (`alarm=True`): evaluated every `poll.gates`: the window is the poll interval, so
  `$__since_deploy` is `poll_seconds` and `since` is `now - poll_seconds`, whether or not the
  stage has deployed (an alarm also gates a stage's entry).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pipewarden.engine.domain.gates.metrics import Observation
from pipewarden.model.view import CommandMetric, MetricRef, PrometheusMetric

DEFAULT_POLL_SECONDS = 10
NO_PROMETHEUS = ("no Prometheus is configured: set prometheus.url in the engine config "
                 "for metric references with source: prometheus")


@dataclass(frozen=True, slots=True)
class ReadContext:
    """Everything a read may expand or pass on (see the module docstring)."""

    stage: str
    hosts: tuple[str, ...]
    now: datetime
    pipeline: str = ""
    """The pipeline's name (synthetic results are stored by pipeline)."""
    deploy_finished: datetime | None = None
    poll_seconds: int = DEFAULT_POLL_SECONDS
    alarm: bool = False
    env: Mapping[str, str] | None = None
    """The environment of a command (engine.md's "Environment"); None: the worker's own."""
    cwd: Path | None = None
    """Where a command runs (the artifact's checkout); None: the worker's directory."""
    synthetic_intervals: Mapping[str, float] = field(default_factory=dict)
    """The pipeline's synthetics' intervals in seconds, by name (for `synthetic_silent`)."""

    @property
    def since(self) -> datetime | None:
        """The start of the counting window: the deploy's end, or `now - poll_seconds` for an
        alarm; None for datapoints before the deploy finished."""
        if self.alarm:
            return self.now - timedelta(seconds=self.poll_seconds)
        return self.deploy_finished

    @property
    def window_seconds(self) -> int | None:
        """`$__since_deploy` in whole seconds: rounded up, at least 1 (None without a window)."""
        if self.alarm:
            return max(1, self.poll_seconds)
        if self.deploy_finished is None:
            return None
        elapsed = (self.now - self.deploy_finished) / timedelta(seconds=1)
        return max(1, math.ceil(elapsed))


@dataclass(frozen=True, slots=True)
class Reading:
    """One read of one reference: `value` (None: no data), `error` (a source error's reason),
    `query` (the text actually sent: the expanded PromQL, the command, the synthetic's name and
    signal), `observed` (the clock of the read), `source`, and `silent` (a synthetic with no
    request for three intervals)."""

    value: float | None
    error: str | None
    query: str
    observed: datetime
    source: str = ""
    silent: bool = False

    @classmethod
    def of(cls, value: float | None, *, query: str, observed: datetime, source: str) -> Reading:
        return cls(value, None, query, observed, source)

    @classmethod
    def failed(cls, error: str, *, query: str, observed: datetime, source: str, silent: bool = False) -> Reading:
        return cls(None, error, query, observed, source, silent)

    @property
    def no_data(self) -> bool:
        return self.value is None and self.error is None

    def observation(self) -> Observation:
        """The reading as the domain's gates take it."""
        return Observation(self.value, self.error, self.query, self.observed, self.source, self.silent)


class MetricSource(Protocol):
    """A metric source: reads one reference for one stage, never raising for what it reads."""

    def read(self, ref: MetricRef, context: ReadContext) -> Reading: ...


class MetricSources:
    """Every source behind one `read`: each reference goes to the source of its `source` key. A
    source that is not configured (no Prometheus URL in the engine config) reads as an error."""

    def __init__(self, *, prometheus: MetricSource | None = None, synthetic: MetricSource | None = None,
                 command: MetricSource | None = None) -> None:
        self._sources: dict[str, MetricSource | None] = {
            "prometheus": prometheus, "synthetic": synthetic, "command": command}

    def read(self, ref: MetricRef, context: ReadContext) -> Reading:
        source = self._sources.get(ref.source)
        if source is None:
            reason = NO_PROMETHEUS if ref.source == "prometheus" else f"no {ref.source} source is configured"
            return Reading.failed(reason, query=describe(ref), observed=context.now, source=ref.source)
        return source.read(ref, context)


def describe(ref: MetricRef) -> str:
    """The reference as a reading's `query` names it before any expansion."""
    if isinstance(ref, PrometheusMetric):
        return ref.query
    if isinstance(ref, CommandMetric):
        return ref.command
    return f"{ref.name} {ref.signal}"
