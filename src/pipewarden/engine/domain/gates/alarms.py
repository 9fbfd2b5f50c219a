"""`alarms`: an entry gate before a stage and a tripwire from the start of its deploy to the end of
its bake (engine.md, "Gates").

**State.** The server evaluates each alarm for each stage that lists it, every `poll.gates`, and
keeps an `AlarmState` per (stage, alarm). `step` applies one reading:

- a value that compares with `threshold` as `comparison` says is a breach: the streak grows, and
  the alarm fires once the streak reaches `periods` (and stays firing while it keeps breaching);
- a value that does not breach, or no data (an empty result is not a breach), ends the streak and
  stops the alarm firing: it "stops firing at the first that does not";
- a source error leaves streak and firing as they were and records the error, so the gate
  reports it (a source error never passes a gate and never triggers a rollback).

**Gate.** `evaluate(states, phase=...)` judges a stage's alarms:

| phase | an alarm firing | a breach streak short of `periods` | a source error or not yet evaluated | otherwise |
|---|---|---|---|---|
| `entry` | WAIT `alarm_firing` | WAIT `alarm_breaching` | WAIT `source_error` | PASS |
| `tripwire` | FAIL `alarm_firing` | WAIT `alarm_breaching` | WAIT `source_error` | PASS |

The tripwire's WAIT only keeps a bake from passing (during the deploy only a FAIL matters). A
streak under way also holds the bake: engine.md's gate passes only when no alarm "is firing or in
a breach streak", and a bake that passed one evaluation before its alarm fires would promote a
bad artifact. When several apply, the most severe code wins (firing, then breaching, then source
error) and the reason names every alarm concerned.

An alarm the gate is asked about (`expected`) with no state yet has not been evaluated since the
server started: WAIT `source_error` ("not evaluated yet"), since a gate that lacks data never
passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.engine.domain.gates.base import FAIL, PASS, WAIT, GateResult, clock
from pipewarden.engine.domain.gates.metrics import SOURCE_ERROR, Observation, number
from pipewarden.engine.domain.ids import format_optional_time, format_time, parse_time
from pipewarden.model.view import AlarmView

NAME = "alarms"
FIRING = "alarm_firing"
BREACHING = "alarm_breaching"

Phase = Literal["entry", "tripwire"]


@dataclass(frozen=True, slots=True)
class AlarmState:
    """One alarm of one stage after its latest evaluation.

    `streak` counts the consecutive breaching evaluations (it goes on counting while firing);
    `firing` is set once `streak >= periods`; `since` is when the current streak began (the first
    breaching evaluation's observed time) and `fired` when it reached `periods`. `last` is the
    latest reading that was not an error, `error` the latest evaluation's source error (None once
    one succeeds). `threshold`, `comparison` and `periods` are the alarm's as of the last step,
    kept so that the gate's inputs say what was judged.
    """

    name: str
    threshold: float
    comparison: str
    periods: int
    streak: int = 0
    firing: bool = False
    since: datetime | None = None
    fired: datetime | None = None
    last: Observation | None = None
    error: Observation | None = None

    @property
    def breaching(self) -> bool:
        """In a breach streak that has not fired yet."""
        return self.streak > 0 and not self.firing

    def to_json(self) -> dict[str, Any]:
        """The state as a gate event's inputs hold it (and as `from_json` reads it back)."""
        return {
            "name": self.name, "threshold": self.threshold, "comparison": self.comparison,
            "periods": self.periods, "streak": self.streak, "firing": self.firing,
            "since": format_optional_time(self.since), "fired": format_optional_time(self.fired),
            "last": None if self.last is None else self.last.to_json(),
            "error": None if self.error is None else self.error.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmState:
        """The state `to_json` wrote (for a store that keeps states between evaluations)."""
        return cls(name=str(data["name"]), threshold=float(data["threshold"]), comparison=str(data["comparison"]),
                   periods=int(data["periods"]), streak=int(data["streak"]), firing=bool(data["firing"]),
                   since=_time(data.get("since")), fired=_time(data.get("fired")),
                   last=_observation(data.get("last")), error=_observation(data.get("error")))


def initial(alarm: AlarmView) -> AlarmState:
    """The state of an alarm never evaluated."""
    return AlarmState(alarm.name, float(alarm.threshold), alarm.comparison, alarm.periods)


def step(state: AlarmState | None, observation: Observation, alarm: AlarmView) -> AlarmState:
    """The state after one evaluation of `alarm` read as `observation` (see the module docstring).
    `state` None: the alarm's first evaluation."""
    if alarm.periods < 1:
        raise InvalidValue(f"alarm {alarm.name!r}: periods is at least 1, not {alarm.periods}")
    current = initial(alarm) if state is None else replace(
        state, name=alarm.name, threshold=float(alarm.threshold), comparison=alarm.comparison, periods=alarm.periods)
    if observation.error is not None:
        return replace(current, error=observation)
    value = observation.value
    if value is None or not alarm.breaches(value):
        return replace(current, streak=0, firing=False, since=None, fired=None, last=observation, error=None)
    streak = current.streak + 1
    firing = streak >= alarm.periods
    since = current.since if current.streak > 0 and current.since is not None else observation.observed
    fired = (current.fired if current.firing and current.fired is not None else observation.observed) if firing else None
    return replace(current, streak=streak, firing=firing, since=since, fired=fired, last=observation, error=None)


def evaluate(states: Mapping[str, AlarmState], *, now: datetime, phase: Phase = "entry",
             expected: Sequence[str] = (), stale: Mapping[str, datetime] | None = None) -> GateResult:
    """The `alarms` gate over a stage's alarm states (see the module docstring); `expected` names
    the stage's alarms, so that one without a state yet waits instead of passing unseen. `stale`:
    when each alarm without a usable state was last evaluated, for one whose state is too old to
    trust (the reason then says so, rather than "not evaluated yet")."""
    if phase not in ("entry", "tripwire"):
        raise InvalidValue(f"an alarms phase is entry or tripwire, not {phase!r}")
    names = list(dict.fromkeys([*expected, *states]))
    inputs: dict[str, Any] = {**clock(now), "phase": phase,
                              "alarms": {name: (states[name].to_json() if name in states else None) for name in names}}
    firing = [states[name] for name in names if name in states and states[name].firing]
    breaching = [states[name] for name in names if name in states and states[name].breaching]
    unreadable = [name for name in names if name not in states or states[name].error is not None]
    if firing:
        reason = "; ".join(_firing(state) for state in firing)
        if phase == "tripwire":
            return FAIL(FIRING, reason, inputs=inputs)
        return WAIT(FIRING, reason, inputs=inputs)
    if breaching:
        return WAIT(BREACHING, "; ".join(_breaching(state) for state in breaching), inputs=inputs)
    if unreadable:
        return WAIT(SOURCE_ERROR, "; ".join(_unreadable(name, states.get(name), (stale or {}).get(name))
                                            for name in unreadable), inputs=inputs)
    if not names:
        return PASS("no alarms", inputs=inputs)
    return PASS(f"no alarm firing or breaching ({', '.join(names)})", inputs=inputs)


def _observed(state: AlarmState) -> str:
    value = state.last.value if state.last is not None else None
    shown = "no data" if value is None else number(value)
    return f"{shown} {state.comparison} {number(state.threshold)}"


def _firing(state: AlarmState) -> str:
    return (f"alarm {state.name} is firing: {_observed(state)} for {state.streak} evaluation"
            f"{'s' if state.streak != 1 else ''} (periods {state.periods})")


def _breaching(state: AlarmState) -> str:
    return f"alarm {state.name} is breaching: {_observed(state)}, {state.streak} of {state.periods} evaluations"


def _unreadable(name: str, state: AlarmState | None, last: datetime | None) -> str:
    if state is None and last is not None:
        return (f"alarm {name} was last evaluated at {format_time(last)}, too long ago to trust "
                "(the server's alarm evaluator is behind or not running)")
    if state is None:
        return f"alarm {name} has not been evaluated yet"
    assert state.error is not None and state.error.error is not None
    return f"alarm {name} cannot be evaluated: {state.error.error}"


def _time(text: object) -> datetime | None:
    return None if text is None else parse_time(str(text))


def _observation(data: object) -> Observation | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise InvalidValue(f"bad observation in an alarm state: {data!r}")
    value = data.get("value")
    return Observation(None if value is None else float(value), data.get("error"), str(data.get("query", "")),
                       parse_time(str(data["observed"])), str(data.get("source", "")), bool(data.get("silent", False)))
