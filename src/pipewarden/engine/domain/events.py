"""Audit events (engine.md, "Events"): their types and `data` keys, and the hash chain.

An event is `{seq, time, type, pipeline, execution, stage, target, host, actor, data, prev_hash,
hash}`; absent parts are null; `actor` is `engine` or the authenticated user. `hash` is the
lower-case hex SHA-256 of the UTF-8 bytes of `prev_hash` followed by the event without `hash` as
canonical JSON (RFC 8785; `data` hashed as the object it is). The first `prev_hash` is 64 zeros.
The store keeps the chain's head (last `seq` and `hash`) apart from the events, so that removing
the last events is detected too (`verify_chain`).

`EventDraft` is what callers append (validated against engine.md's table when made); the store
gives it `seq` and `prev_hash` inside the transaction that moves the head (`seal`).

The `data` keys are engine.md's, exactly: a draft with a key missing or one more is refused
(InvalidEvent), so a typo cannot reach the audit log. Where engine.md names values (`trigger`,
build `result`...) they are checked too; the values it leaves open are this project's choice:

- `tests_finished.result`, `bake_finished.result`: `succeeded`, `failed` or `cancelled` (a bake or
  test run cut short by `cancel` or a rollback of the stage).
- `rollback_finished.result`: `succeeded` (at least one target restored, no rollback hook failed)
  or `failed`.
- `approval` of `promoted` and `rejected` is null; `reason` of human actions is null when none
  was given (`--reason` is required only by `override`).
- `build_finished.artifact` is null when no artifact was made (the build failed or was cut off).
- `hook.log` is the log file's path relative to the state dir, null when the hook never started.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipewarden.engine.domain.canonical import CanonicalError, canonical_json
from pipewarden.engine.domain.errors import InvalidEvent
from pipewarden.engine.domain.ids import ZERO_HASH, format_time, is_time
from pipewarden.engine.domain.status import TERMINAL_EXECUTION
from pipewarden.model.view import HOOK_ORDER

ENGINE_ACTOR = "engine"

EVENT_KEYS: tuple[str, ...] = (
    "seq", "time", "type", "pipeline", "execution", "stage", "target", "host", "actor", "data", "prev_hash", "hash",
)
"""The keys of an event, in the order `events --format jsonl` writes them."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_ARTIFACT = re.compile(r"[0-9a-f]{12}")

Check = Callable[[Any], bool]


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _attempt(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _opt_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _opt_time(value: Any) -> bool:
    return value is None or is_time(value)


def _time(value: Any) -> bool:
    return is_time(value)


def _commit(value: Any) -> bool:
    return isinstance(value, str) and _COMMIT.fullmatch(value) is not None


def _artifact(value: Any) -> bool:
    return isinstance(value, str) and _ARTIFACT.fullmatch(value) is not None


def _opt_artifact(value: Any) -> bool:
    return value is None or _artifact(value)


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _object(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(key, str) for key in value)


def _target_map(value: Any) -> bool:
    return _object(value) and all(_opt_artifact(item) for item in value.values())


def _one_of(*values: str) -> Check:
    allowed = frozenset(values)
    return lambda value: isinstance(value, str) and value in allowed


_GATES = ("policy", "blocklist", "approval", "window", "alarms", "stage_busy", "paused", "bake_time", "datapoints")
_OVERRIDABLE = ("window", "alarms", "datapoints", "blocklist")
_ROLLBACK_TRIGGERS = ("hook", "tests", "alarm", "datapoints", "deadline", "manual")
_RUN_RESULTS = ("succeeded", "failed", "cancelled")

_HUMAN = {"reason": _opt_str, "approval": _opt_str}
_OVERRIDE = {"gate": _one_of(*_OVERRIDABLE), "reason": _str, "expires": _time}
_REASON = {"reason": _opt_str}

EVENT_TYPES: Mapping[str, Mapping[str, Check]] = {
    "execution_started": {"commit": _commit, "trigger": _one_of("poll", "release")},
    "retried": {"reason": _opt_str},
    "branch_missing": {"branch": _str},
    "config_reloaded": {"files": _names},
    "build_started": {"commit": _commit, "attempt": _attempt},
    "build_finished": {"result": _one_of("succeeded", "failed", "interrupted", "reused"),
                       "artifact": _opt_artifact, "duration_ms": _count},
    "gate": {"gate": _one_of(*_GATES), "result": _one_of("pass", "wait", "fail"), "code": _str,
             "reason": _str, "until": _opt_time, "inputs": _object},
    "stage_started": {"artifact": _artifact},
    "hook": {"hook": _one_of(*HOOK_ORDER), "exit_code": _opt_int, "attempt": _attempt, "duration_ms": _count,
             "timed_out": _bool, "interrupted": _bool, "log": _opt_str},
    "tests_finished": {"result": _one_of(*_RUN_RESULTS), "failed": _names},
    "bake_started": {"duration_s": _count},
    "bake_finished": {"result": _one_of(*_RUN_RESULTS), "reason": _str},
    "promoted": _HUMAN,
    "approved": _HUMAN,
    "rejected": _HUMAN,
    "override_granted": _OVERRIDE,
    "override_expired": _OVERRIDE,
    "override_revoked": _OVERRIDE,
    "rollback_started": {"trigger": _one_of(*_ROLLBACK_TRIGGERS), "to": _target_map},
    "rollback_finished": {"result": _one_of("succeeded", "failed"), "duration_ms": _count},
    "paused": _REASON,
    "resumed": _REASON,
    "cancelled": _REASON,
    "superseded": {"reason": _opt_str, "by": _str},
    "execution_finished": {"status": _one_of(*sorted(str(s) for s in TERMINAL_EXECUTION)), "reason": _opt_str},
    "refused": {"action": _str, "reason": _str},
}
"""Each event type and its `data` keys with a check of each value (engine.md's table)."""

OPTIONAL_KEYS: Mapping[str, Mapping[str, Check]] = {
    "execution_started": {"reason": _str},
}
"""Keys added to engine.md's table, present only when they have a value (so that events without
them keep exactly the table's keys): `release --reason`."""


def validate_data(event_type: str, data: Mapping[str, Any]) -> None:
    """InvalidEvent unless `data` has exactly the keys engine.md gives `event_type` (and any of its
    OPTIONAL_KEYS), each with a value of its kind."""
    checks = EVENT_TYPES.get(event_type)
    if checks is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"{event_type}: data must be an object")
    missing = [key for key in checks if key not in data]
    optional = OPTIONAL_KEYS.get(event_type, {})
    extra = [key for key in data if key not in checks and key not in optional]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(map(str, extra))}"]
                                                                        if extra else [])
        raise InvalidEvent(f"{event_type}: data keys {'; '.join(parts)} (engine.md: {', '.join(checks)})")
    for key, check in [*checks.items(), *((k, c) for k, c in optional.items() if k in data)]:
        if not check(data[key]):
            raise InvalidEvent(f"{event_type}: bad value of data.{key}: {data[key]!r}")


def _plain(value: Any) -> Any:
    """A deep copy of a JSON value as plain dicts and lists (tuples become lists), so that an
    event compares equal to itself read back from the store."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its text
    return value


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before the store gives it `seq`, `prev_hash` and `hash`."""

    type: str
    time: str
    actor: str
    data: dict[str, Any]
    pipeline: str | None = None
    execution: str | None = None
    stage: str | None = None
    target: str | None = None
    host: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _plain(self.data))
        if not is_time(self.time):
            raise InvalidEvent(f"{self.type}: bad time {self.time!r}")
        if not isinstance(self.actor, str) or not self.actor:
            raise InvalidEvent(f"{self.type}: an event needs an actor (engine or the user)")
        for name in ("pipeline", "execution", "stage", "target", "host"):
            if not _opt_str(getattr(self, name)):
                raise InvalidEvent(f"{self.type}: {name} must be text or null")
        validate_data(self.type, self.data)
        try:
            canonical_json(self.data)
        except CanonicalError as error:
            raise InvalidEvent(f"{self.type}: data is not canonical JSON: {error}") from None


def draft(event_type: str, *, time: datetime, data: Mapping[str, Any], actor: str = ENGINE_ACTOR,
          pipeline: str | None = None, execution: str | None = None, stage: str | None = None,
          target: str | None = None, host: str | None = None) -> EventDraft:
    """An EventDraft at `time` (written with milliseconds, UTC, `Z`)."""
    return EventDraft(event_type, format_time(time), actor, dict(data), pipeline, execution, stage, target, host)


@dataclass(frozen=True, slots=True)
class Event:
    """A sealed event of the audit log."""

    seq: int
    time: str
    type: str
    pipeline: str | None
    execution: str | None
    stage: str | None
    target: str | None
    host: str | None
    actor: str
    data: dict[str, Any] = field(hash=False)
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The event without `hash`: what the hash covers."""
        return {
            "seq": self.seq, "time": self.time, "type": self.type, "pipeline": self.pipeline,
            "execution": self.execution, "stage": self.stage, "target": self.target, "host": self.host,
            "actor": self.actor, "data": self.data, "prev_hash": self.prev_hash,
        }

    def to_json(self) -> dict[str, Any]:
        """The event as `events --format jsonl` writes it (keys in EVENT_KEYS order)."""
        return {**self.body(), "hash": self.hash}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Event:
        """An event read back from its JSON object (exactly EVENT_KEYS). No check of the hash:
        that is `verify_chain`'s job."""
        if set(value) != set(EVENT_KEYS):
            raise InvalidEvent(f"an event has the keys {', '.join(EVENT_KEYS)}")
        return cls(
            value["seq"], value["time"], value["type"], value["pipeline"], value["execution"], value["stage"],
            value["target"], value["host"], value["actor"], _plain(value["data"]), value["prev_hash"], value["hash"],
        )

    def draft(self) -> EventDraft:
        """The draft this event was sealed from."""
        return EventDraft(self.type, self.time, self.actor, self.data, self.pipeline, self.execution, self.stage,
                          self.target, self.host)


def event_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """sha256(UTF-8 of prev_hash || canonical JSON of the event without `hash`), lower-case hex."""
    digest = hashlib.sha256(prev_hash.encode("utf-8"))
    digest.update(canonical_json(body))
    return digest.hexdigest()


def seal(draft: EventDraft, seq: int, prev_hash: str) -> Event:
    """The event `draft` becomes at `seq` after the event whose hash is `prev_hash`."""
    if seq < 1:
        raise InvalidEvent(f"seq counts from 1, not {seq}")
    if _HEX64.fullmatch(prev_hash) is None:
        raise InvalidEvent(f"bad prev_hash {prev_hash!r}")
    unsealed = Event(seq, draft.time, draft.type, draft.pipeline, draft.execution, draft.stage, draft.target,
                     draft.host, draft.actor, draft.data, prev_hash, "")
    return Event(**{**_fields(unsealed), "hash": event_hash(prev_hash, unsealed.body())})


def _fields(event: Event) -> dict[str, Any]:
    return {key: getattr(event, key) for key in EVENT_KEYS}


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last `seq` and `hash` of the chain, kept apart from the events."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where a chain stops matching: the smallest `seq` at which the stored events differ from an
    intact chain (a changed event, a missing or moved one, or the head), and why."""

    seq: int
    reason: str


def find_break(events: Iterable[Event], head: ChainHead | None) -> ChainBreak | None:
    """The first place where `events` (in stored `seq` order) and `head` stop forming an intact
    chain, or None.

    Detects an edited event (its hash no longer matches; an edited hash no longer matches the next
    event's prev_hash), a removed or reordered event (seq not the next one; prev_hash not the
    previous hash), and removed last events (the head is ahead of the last event) or added ones
    (the head is behind).
    """
    expected_prev = ZERO_HASH
    position = 0
    for event in events:
        position += 1
        if event.seq != position:
            if isinstance(event.seq, int) and not isinstance(event.seq, bool) and event.seq > position:
                return ChainBreak(position, f"event {position} is missing (the next stored event is {event.seq})")
            return ChainBreak(position, f"event {position} is out of place (found seq {event.seq!r})")
        if event.prev_hash != expected_prev:
            return ChainBreak(position, f"event {position}: prev_hash does not match the hash of event {position - 1}")
        try:
            computed = event_hash(event.prev_hash, event.body())
        except CanonicalError as error:
            return ChainBreak(position, f"event {position} cannot be hashed: {error}")
        if computed != event.hash:
            return ChainBreak(position, f"event {position}: hash does not match its content")
        expected_prev = event.hash
    if head is None:
        if position == 0:
            return None
        return ChainBreak(position + 1, "the chain head is missing")
    if head.seq > position:
        return ChainBreak(position + 1, f"events {position + 1} to {head.seq} are missing (the head is at {head.seq})")
    if head.seq < position:
        return ChainBreak(head.seq + 1, f"event {head.seq + 1} is past the recorded head ({head.seq})")
    if head.hash != expected_prev:
        if position == 0:
            return ChainBreak(1, "the recorded head is not that of an empty chain")
        return ChainBreak(position, f"event {position}: hash does not match the recorded head")
    return None


def verify_chain(events: Iterable[Event], head: ChainHead | None) -> int | None:
    """The first bad `seq` (see `find_break`), or None when the chain and its head are intact."""
    found = find_break(events, head)
    return None if found is None else found.seq
