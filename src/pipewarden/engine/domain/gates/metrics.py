"""One reading of a metric reference, as the `datapoints` and `alarms` gates judge it.

A metric source (engine/sources/) turns a reference (`{source: prometheus, query}`, a synthetic's
count, a command's output) into one of three things, and the gates treat each differently
(engine.md, "Metric references"):

- a **value**: one finite number;
- **no data** (`value` and `error` both None): an empty Prometheus result, a command printing
  nothing, a synthetic with no request recorded. Never a pass of `datapoints`; never a breach of
  an alarm;
- a **source error** (`error` set): several series, NaN, an HTTP error, a timeout, a command that
  fails or prints something that is not one number. The gate waits (code `source_error`) with
  the reason; a source error never passes a gate and never triggers a rollback.

`silent` marks the one error with a code of its own: a synthetic of which no request reached the
stage's hosts for three intervals (code `synthetic_silent`).

Every observation carries the query actually sent (placeholders expanded) and when it was
observed, so that a gate event holds its inputs (engine.md: "every decision is an event with its
inputs").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.ids import format_time

SOURCE_ERROR = "source_error"
SYNTHETIC_SILENT = "synthetic_silent"


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading: a `value`, no data, or an `error` (see the module docstring)."""

    value: float | None
    error: str | None
    query: str
    observed: datetime
    source: str = ""
    """`prometheus`, `synthetic` or `command` (empty when not known)."""
    silent: bool = False

    def __post_init__(self) -> None:
        if self.value is not None and self.error is not None:
            raise InvalidValue("an observation is a value or an error, not both")
        if self.value is not None:
            if isinstance(self.value, bool) or not isinstance(self.value, int | float):
                raise InvalidValue(f"an observed value is a number, not {self.value!r}")
            if not math.isfinite(self.value):
                # Sources turn NaN and infinities into source errors; here they would also break
                # the gate event's JSON.
                raise InvalidValue(f"an observed value is finite, not {self.value!r}")
            object.__setattr__(self, "value", float(self.value))
        if self.silent and self.error is None:
            raise InvalidValue("a silent synthetic is reported as an error with its reason")

    @classmethod
    def of(cls, value: float | None, *, query: str = "", observed: datetime, source: str = "") -> Observation:
        """A value, or no data for None."""
        return cls(value, None, query, observed, source)

    @classmethod
    def failed(cls, error: str, *, query: str = "", observed: datetime, source: str = "",
               silent: bool = False) -> Observation:
        """A source error with its reason."""
        return cls(None, error, query, observed, source, silent)

    @property
    def no_data(self) -> bool:
        return self.value is None and self.error is None

    @property
    def code(self) -> str | None:
        """`source_error` or `synthetic_silent` for an error, None otherwise."""
        if self.error is None:
            return None
        return SYNTHETIC_SILENT if self.silent else SOURCE_ERROR

    def to_json(self) -> dict[str, Any]:
        """The observation as a gate event's inputs hold it."""
        return {"source": self.source, "query": self.query, "value": self.value, "error": self.error,
                "silent": self.silent, "observed": format_time(self.observed)}


def number(value: float) -> str:
    """A count or value as a reason writes it: `1204` for whole numbers, else up to 6
    significant digits (`105.4`, `0.000123`)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"
