"""The rollback plan and the last good artifact (domain/rollback.py)."""

from __future__ import annotations

import pytest
from engine_helpers import at, stage
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.errors import Refused
from pipewarden.engine.domain.rollback import (
    BakePassed,
    RolledBackFrom,
    TargetEvent,
    last_good,
    plan_rollback,
    rollback_batches,
    rollback_outcome,
)
from pipewarden.engine.domain.status import ExecutionStatus

A, B, C, D = "a" * 12, "b" * 12, "c" * 12, "d" * 12
EVERY = {A, B, C, D}


def test_newest_by_bake_time_not_by_order() -> None:
    history: list[TargetEvent] = [BakePassed(B, "cell-1", at(20)), BakePassed(A, "cell-1", at(10))]
    assert last_good("cell-1", C, history, blocklisted=set(), intact=EVERY) == B
    assert last_good("cell-2", C, history, blocklisted=set(), intact=EVERY) is None


def test_each_condition_excludes() -> None:
    history: list[TargetEvent] = [BakePassed(A, "cell-1", at(10)), BakePassed(B, "cell-1", at(20)),
                                  BakePassed(C, "cell-1", at(30))]
    assert last_good("cell-1", C, history, blocklisted=set(), intact=EVERY) == B      # not the one replaced
    assert last_good("cell-1", D, history, blocklisted={C}, intact=EVERY) == B        # not blocklisted
    assert last_good("cell-1", D, history, blocklisted=set(), intact={A, B}) == B     # content intact
    rolled = [*history, RolledBackFrom(C, "cell-1", at(40)), RolledBackFrom(B, "cell-2", at(41))]
    assert last_good("cell-1", D, rolled, blocklisted=set(), intact=EVERY) == B       # rolled back since
    again = [*rolled, BakePassed(C, "cell-1", at(50))]                                # ...until it baked again
    assert last_good("cell-1", D, again, blocklisted=set(), intact=EVERY) == C
    same_instant = [*history, RolledBackFrom(C, "cell-1", at(30))]
    assert last_good("cell-1", D, same_instant, blocklisted=set(), intact=EVERY) == B


def test_ties_go_to_the_later_record() -> None:
    history: list[TargetEvent] = [BakePassed(A, "cell-1", at(10)), BakePassed(B, "cell-1", at(10))]
    assert last_good("cell-1", C, history, blocklisted=set(), intact=EVERY) == B


def test_plan_touched_hosts_only() -> None:
    view = stage(targets={"cell-1": ["h1:1", "h2:1", "h3:1"], "cell-2": ["h4:1"], "cell-3": ["h5:1"]},
                 min_healthy="50%")
    history: list[TargetEvent] = [BakePassed(A, "cell-1", at(1)), BakePassed(A, "cell-3", at(1))]
    plan = plan_rollback(view, C, ["H3:1", "h1:1", "h4:1"], history, blocklisted=set(), intact=EVERY)
    assert plan.to == {"cell-1": A, "cell-2": None}
    assert plan.targets[0].hosts == ("h1:1", "h3:1")
    assert [t.target for t in plan.restoring] == ["cell-1"]
    assert rollback_batches(view, plan.targets[0]).batches == (("h1:1",), ("h3:1",))


def test_to_artifact() -> None:
    view = stage()
    plan = plan_rollback(view, C, view.hosts, [], blocklisted=set(), intact=EVERY, to=A)
    assert plan.to == {"cell-1": A}
    for to, blocked, intact in [(C, set(), EVERY), (A, {A}, EVERY), (A, set(), {B})]:
        with pytest.raises(Refused):
            plan_rollback(view, C, view.hosts, [], blocklisted=blocked, intact=intact, to=to)


def test_outcome() -> None:
    assert rollback_outcome(1, False) is ExecutionStatus.ROLLED_BACK
    assert rollback_outcome(0, False) is ExecutionStatus.FAILED
    assert rollback_outcome(2, True) is ExecutionStatus.FAILED


def reference_last_good(target: str, replacing: str, history: list[TargetEvent], blocklisted: set[str],
                        intact: set[str]) -> str | None:
    """Brute force: go through the bake passes from the newest (ties: the later record) and take
    the first one whose artifact qualifies, judging "rolled back since" from that pass."""
    passes = [(event.at, index, event) for index, event in enumerate(history)
              if isinstance(event, BakePassed) and event.target == target]
    for when, _, event in sorted(passes, key=lambda p: (p[0], p[1]), reverse=True):
        name = event.artifact
        if name == replacing or name in blocklisted or name not in intact:
            continue
        if any(isinstance(e, RolledBackFrom) and e.artifact == name and e.target == target and e.at >= when
               for e in history):
            continue
        return name
    return None


artifacts = st.sampled_from(sorted(EVERY))
targets = st.sampled_from(["cell-1", "cell-2"])
events = st.one_of(
    st.builds(BakePassed, artifacts, targets, st.integers(0, 8).map(at)),
    st.builds(RolledBackFrom, artifacts, targets, st.integers(0, 8).map(at)),
)


@given(st.lists(events, max_size=14), artifacts, st.sets(artifacts), st.sets(artifacts), targets)
def test_last_good_matches_brute_force(history: list[TargetEvent], replacing: str, blocklisted: set[str],
                                       intact: set[str], target: str) -> None:
    assert last_good(target, replacing, history, blocklisted=blocklisted, intact=intact) == \
        reference_last_good(target, replacing, history, blocklisted, intact)


@given(st.lists(events, max_size=10), artifacts, st.sets(st.sampled_from(["h1:1", "h2:1", "H3:1", "h4:1", "x:1"])))
def test_plan_matches_per_target_choice(history: list[TargetEvent], replacing: str, touched: set[str]) -> None:
    view = stage(targets={"cell-1": ["h1:1", "h2:1", "h3:1"], "cell-2": ["h4:1"]})
    plan = plan_rollback(view, replacing, touched, history, blocklisted=set(), intact=EVERY)
    keys = {h.lower() for h in touched}
    for target in plan.targets:
        assert target.hosts and all(h.lower() in keys for h in target.hosts)
        assert target.artifact == reference_last_good(target.target, replacing, history, set(), EVERY)
        assert target.artifact != replacing
    covered = {h for t in plan.targets for h in t.hosts}
    assert covered == {h for h in view.hosts if h.lower() in keys}
