"""`{source: synthetic, name, signal}`: the count of one synthetic's successful (`success`) or
failed (`failure`) requests to the stage's hosts since the deploy finished (engine.md, "Metric
references" and "Synthetics").

The counts come from the synthetics runner's store through a `SyntheticCounts` callable, typed
after `engine.synthetics.synthetic_reading` with its store bound (`functools.partial(
synthetic_reading, store)`), so this module imports neither the store nor the runner. That
function answers the count (None: no request of either outcome reached the hosts since then, no
data) and whether the synthetic is silent (some host of the stage had no request of it for three
intervals); a silent reading is an error marked `silent`, which the gate turns into a WAIT with
code `synthetic_silent`. A store failure is a source error, never a crash of the gate.

The context gives the pipeline (the store keys results by it) and each synthetic's interval
(`synthetic_intervals`; a synthetic missing there has no interval, never runs, and is silent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pipewarden.engine.sources.base import ReadContext, Reading, describe
from pipewarden.model.view import MetricRef, SyntheticMetric

SOURCE = "synthetic"
SILENT_INTERVALS = 3


class CountReading(Protocol):
    """What the store side answers: `value` (the count, None for no data) and `silent`."""

    @property
    def value(self) -> int | None: ...

    @property
    def silent(self) -> bool: ...


class SyntheticCounts(Protocol):
    """`synthetic_reading(store, ...)` with the store bound: the reading of synthetic `name` of
    `pipeline`, outcome `signal` (`success` or `failure`), to any of `hosts` (compared
    case-insensitively), counted from `since`, as of `now`, for a synthetic sent every
    `interval_s` (None: it has no interval)."""

    def __call__(self, pipeline: str, name: str, signal: str, hosts: Sequence[str], since: datetime,
                 interval_s: float | None, now: datetime) -> CountReading: ...


class SyntheticSource:
    def __init__(self, counts: SyntheticCounts) -> None:
        self._counts = counts

    def read(self, ref: MetricRef, context: ReadContext) -> Reading:
        query = describe(ref)
        if not isinstance(ref, SyntheticMetric):
            return Reading.failed(f"not a synthetic reference: source {ref.source}", query=query,
                                  observed=context.now, source=SOURCE)
        since = context.since
        if since is None:
            return Reading.failed("the stage's deploy has not finished: nothing to count yet", query=query,
                                  observed=context.now, source=SOURCE)
        interval = context.synthetic_intervals.get(ref.name)
        try:
            answer = self._counts(context.pipeline, ref.name, ref.signal, context.hosts, since,
                                  None if interval is None else float(interval), context.now)
        except Exception as error:  # noqa: BLE001 - a store failure is a source error, never a crash of the gate
            return Reading.failed(f"the synthetics store failed: {type(error).__name__}: {error}", query=query,
                                  observed=context.now, source=SOURCE)
        if answer.silent:
            every = "it has no interval" if interval is None else f"every {interval:g}s"
            return Reading.failed(f"synthetic {ref.name} ({every}): no request of it reached some of the stage's hosts "
                                  f"in the last {SILENT_INTERVALS} intervals: is the synthetics runner running?",
                                  query=query, observed=context.now, source=SOURCE, silent=True)
        value = answer.value
        return Reading.of(None if value is None else float(value), query=query, observed=context.now, source=SOURCE)
