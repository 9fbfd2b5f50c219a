"""Audit events: engine.md's table, validation, and the hash chain (domain/events.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
import rfc8785
from engine_helpers import at
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.errors import InvalidEvent
from pipewarden.engine.domain.events import (
    EVENT_KEYS,
    EVENT_TYPES,
    ChainHead,
    Event,
    EventDraft,
    draft,
    find_break,
    seal,
    verify_chain,
)
from pipewarden.engine.domain.gates import WAIT
from pipewarden.engine.domain.ids import ZERO_HASH

COMMIT = "9f8e7d6c5b4a" + "1" * 28
ARTIFACT = COMMIT[:12]

# engine.md's table, written out once more by hand.
ENGINE_MD = {
    "execution_started": {"commit", "trigger"},
    "retried": {"reason"},
    "branch_missing": {"branch"},
    "config_reloaded": {"files"},
    "build_started": {"commit", "attempt"},
    "build_finished": {"result", "artifact", "duration_ms"},
    "gate": {"gate", "result", "code", "reason", "until", "inputs"},
    "stage_started": {"artifact"},
    "hook": {"hook", "exit_code", "attempt", "duration_ms", "timed_out", "interrupted", "log"},
    "tests_finished": {"result", "failed"},
    "bake_started": {"duration_s"},
    "bake_finished": {"result", "reason"},
    "promoted": {"reason", "approval"},
    "approved": {"reason", "approval"},
    "rejected": {"reason", "approval"},
    "override_granted": {"gate", "reason", "expires"},
    "override_expired": {"gate", "reason", "expires"},
    "override_revoked": {"gate", "reason", "expires"},
    "rollback_started": {"trigger", "to"},
    "rollback_finished": {"result", "duration_ms"},
    "paused": {"reason"},
    "resumed": {"reason"},
    "cancelled": {"reason"},
    "superseded": {"reason", "by"},
    "execution_finished": {"status", "reason"},
    "refused": {"action", "reason"},
}

SAMPLES: dict[str, dict[str, Any]] = {
    "execution_started": {"commit": COMMIT, "trigger": "poll"},
    "retried": {"reason": "fixed the flaky host"},
    "branch_missing": {"branch": "main"},
    "config_reloaded": {"files": ["org.yaml"]},
    "build_started": {"commit": COMMIT, "attempt": 1},
    "build_finished": {"result": "succeeded", "artifact": ARTIFACT, "duration_ms": 1234},
    "gate": WAIT("baking", "baking 1m of 60m", until=at(3600), inputs={"value": 0.5}).event_data("bake_time"),
    "stage_started": {"artifact": ARTIFACT},
    "hook": {"hook": "validate", "exit_code": None, "attempt": 2, "duration_ms": 10, "timed_out": True,
             "interrupted": False, "log": "logs/shop-1/beta/h1/validate.2.log"},
    "tests_finished": {"result": "failed", "failed": ["integration"]},
    "bake_started": {"duration_s": 3600},
    "bake_finished": {"result": "succeeded", "reason": "baked 60m"},
    "promoted": {"reason": None, "approval": None},
    "approved": {"reason": "looks good", "approval": "security"},
    "rejected": {"reason": "no", "approval": None},
    "override_granted": {"gate": "window", "reason": "hotfix", "expires": "2026-12-01T16:00:00.000Z"},
    "override_expired": {"gate": "alarms", "reason": "noisy", "expires": "2026-12-01T16:00:00.000Z"},
    "override_revoked": {"gate": "blocklist", "reason": "done", "expires": "2026-12-01T16:00:00.000Z"},
    "rollback_started": {"trigger": "hook", "to": {"cell-1": ARTIFACT, "cell-2": None}},
    "rollback_finished": {"result": "succeeded", "duration_ms": 4000},
    "paused": {"reason": "incident"},
    "resumed": {"reason": None},
    "cancelled": {"reason": None},
    "superseded": {"reason": "a newer execution arrived", "by": "shop-8"},
    "execution_finished": {"status": "rolled_back", "reason": "hook validate failed on h1"},
    "refused": {"action": "promote", "reason": "shop-7 is not awaiting promotion"},
}


def test_table_is_engine_md() -> None:
    assert {name: set(keys) for name, keys in EVENT_TYPES.items()} == ENGINE_MD
    assert set(SAMPLES) == set(ENGINE_MD)
    assert EVENT_KEYS == ("seq", "time", "type", "pipeline", "execution", "stage", "target", "host", "actor", "data",
                          "prev_hash", "hash")


@pytest.mark.parametrize("event_type", sorted(ENGINE_MD))
def test_every_type_validates_its_sample(event_type: str) -> None:
    made = draft(event_type, time=at(0), data=SAMPLES[event_type], pipeline="shop", execution="shop-7")
    assert made.time == "2026-12-01T15:00:00.000Z" and made.actor == "engine"


@pytest.mark.parametrize(("event_type", "data"), [
    ("nope", {}),
    ("retried", {}),                                                  # missing key
    ("retried", {"reason": "x", "extra": 1}),                         # unknown key
    ("execution_started", {"commit": COMMIT[:12], "trigger": "poll"}),  # not a full commit
    ("execution_started", {"commit": COMMIT, "trigger": "cron"}),
    ("build_finished", {"result": "ok", "artifact": None, "duration_ms": 1}),
    ("build_started", {"commit": COMMIT, "attempt": 0}),
    ("hook", {**SAMPLES["hook"], "hook": "deploy"}),
    ("hook", {**SAMPLES["hook"], "timed_out": 1}),
    ("gate", {**SAMPLES["gate"], "until": "2026-12-01T16:00:00Z"}),   # seconds only: not the event form
    ("gate", {**SAMPLES["gate"], "gate": "nonsense"}),
    ("override_granted", {**SAMPLES["override_granted"], "gate": "policy"}),
    ("rollback_started", {"trigger": "manual", "to": {"cell-1": "main"}}),
    ("execution_finished", {"status": "running", "reason": None}),
    ("gate", {**SAMPLES["gate"], "inputs": {"v": float("inf")}}),
])
def test_bad_data_is_refused(event_type: str, data: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        draft(event_type, time=at(0), data=data)


def test_envelope_checks() -> None:
    with pytest.raises(InvalidEvent):
        EventDraft("paused", "2026-12-01T15:00:00Z", "engine", {"reason": None})
    with pytest.raises(InvalidEvent):
        draft("paused", time=at(0), data={"reason": None}, actor="")


def reference_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + rfc8785.dumps(body)).hexdigest()


def chain(n: int, data: list[dict[str, Any]] | None = None) -> list[Event]:
    events: list[Event] = []
    prev = ZERO_HASH
    for i in range(n):
        reason = data[i] if data else {"reason": f"r{i}"}
        event = seal(draft("paused", time=at(i), data=reason, pipeline="shop", actor="dana"), i + 1, prev)
        events.append(event)
        prev = event.hash
    return events


def test_hash_is_engine_md_formula() -> None:
    first, second = chain(2)
    assert first.prev_hash == ZERO_HASH and second.prev_hash == first.hash
    body = {key: value for key, value in first.to_json().items() if key != "hash"}
    assert first.hash == reference_hash(ZERO_HASH, body)
    assert list(first.to_json()) == list(EVENT_KEYS)
    assert Event.from_json(json.loads(json.dumps(first.to_json()))) == first
    assert first.draft() == draft("paused", time=at(0), data={"reason": "r0"}, pipeline="shop", actor="dana")


def test_intact_and_simple_breaks() -> None:
    events = chain(5)
    head = ChainHead(5, events[-1].hash)
    assert verify_chain(events, head) is None
    assert verify_chain([], None) is None
    assert verify_chain([], ChainHead(0, ZERO_HASH)) is None
    assert verify_chain([], ChainHead(3, events[2].hash)) == 1              # everything removed
    assert verify_chain(events[:3], head) == 4                              # the last two removed
    assert verify_chain(events, ChainHead(4, events[3].hash)) == 5          # one past the head
    assert verify_chain(events, None) == 6                                  # the head removed
    assert verify_chain(events, ChainHead(5, events[3].hash)) == 5          # the head's hash changed
    assert verify_chain(events[:2] + events[3:], head) == 3                 # one removed
    assert verify_chain([events[0], events[2], events[1], *events[3:]], head) == 2  # reordered
    broken = find_break(events[:2] + events[3:], head)
    assert broken is not None and "missing" in broken.reason


def test_edit_then_rehash_is_caught_by_the_next_event_or_the_head() -> None:
    events = chain(4)
    edited = seal(replace(events[1], data={"reason": "edited"}).draft(), 2, events[1].prev_hash)
    assert verify_chain([events[0], edited, *events[2:]], ChainHead(4, events[-1].hash)) == 3
    last = seal(replace(events[3], actor="mallory").draft(), 4, events[3].prev_hash)
    assert verify_chain([*events[:3], last], ChainHead(4, events[-1].hash)) == 4


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
              st.floats(allow_nan=False, allow_infinity=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=8)
paused_drafts = st.builds(lambda reason: ("paused", {"reason": reason}), st.one_of(st.none(), texts))
gate_drafts = st.builds(lambda reason, inputs: ("gate", WAIT("insufficient_data", reason, inputs=inputs)
                                               .event_data("datapoints")),
                        texts, st.dictionaries(texts, json_values, max_size=3))
datas = st.lists(st.one_of(paused_drafts, gate_drafts), min_size=1, max_size=6)


def mixed_chain(items: list[tuple[str, dict[str, Any]]]) -> list[Event]:
    events: list[Event] = []
    prev = ZERO_HASH
    for i, (event_type, data) in enumerate(items):
        event = seal(draft(event_type, time=at(i), data=data, pipeline="shop", stage="beta", actor="engine"),
                     i + 1, prev)
        events.append(event)
        prev = event.hash
    return events


@given(datas, st.data())
def test_any_single_byte_tamper_is_detected(data: list[tuple[str, dict[str, Any]]], pick: st.DataObject) -> None:
    """Write the chain as JSON lines, change one byte anywhere: the chain no longer verifies
    (or the text no longer reads as events), unless the change left every value as it was (such
    as `1e+16` becoming `1E+16`)."""
    events = mixed_chain(data)
    head = ChainHead(len(events), events[-1].hash)
    lines = [json.dumps(e.to_json(), ensure_ascii=False, separators=(",", ":")).encode() for e in events]
    blob = bytearray(b"\n".join(lines))
    position = pick.draw(st.integers(0, len(blob) - 1))
    blob[position] = pick.draw(st.integers(0, 255).filter(lambda b: b != blob[position]))
    try:
        read = [Event.from_json(json.loads(line)) for line in bytes(blob).decode("utf-8").split("\n")]
    except (ValueError, KeyError, InvalidEvent):
        return  # the log no longer reads: `audit verify` reports that line
    if read == events:
        return  # e.g. a changed escape that spells the same text
    found = verify_chain(read, head)
    assert found is not None
    first_changed = next((i + 1 for i, (a, b) in enumerate(zip(read, events, strict=False)) if a != b),
                         min(len(read), len(events)) + 1)
    assert found <= first_changed


@given(st.integers(2, 8), st.data())
def test_any_removal_or_swap_is_detected(n: int, pick: st.DataObject) -> None:
    events = chain(n)
    head = ChainHead(n, events[-1].hash)
    i = pick.draw(st.integers(0, n - 1))
    assert verify_chain(events[:i] + events[i + 1:], head) == i + 1
    j = pick.draw(st.integers(0, n - 1).filter(lambda j: j != i))
    swapped = list(events)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert verify_chain(swapped, head) == min(i, j) + 1
    k = pick.draw(st.integers(0, n - 1))
    assert verify_chain(events[:k], head) == k + 1


def test_a_release_reason_is_an_optional_key_of_execution_started() -> None:
    commit = "a" * 40
    plain = draft("execution_started", time=at(0), data={"commit": commit, "trigger": "release"})
    assert set(plain.data) == {"commit", "trigger"}
    given = draft("execution_started", time=at(0), data={"commit": commit, "trigger": "release", "reason": "hotfix"})
    assert given.data["reason"] == "hotfix"
    with pytest.raises(InvalidEvent, match="bad value of data.reason"):
        draft("execution_started", time=at(0), data={"commit": commit, "trigger": "release", "reason": 3})
    with pytest.raises(InvalidEvent, match="unknown reason"):  # optional for execution_started only
        draft("build_started", time=at(0), data={"commit": commit, "attempt": 1, "reason": "x"})
