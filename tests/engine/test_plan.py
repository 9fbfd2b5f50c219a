"""Deploy batches under min_healthy (domain/plan.py), against engine.md's formula."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from engine_helpers import stage
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.plan import batch_size, batches, hook_order, stage_plan, subset_plan, target_plan
from pipewarden.model.view import MinHealthy, TargetView


def hosts_of(n: int) -> list[str]:
    return [f"10.0.0.{i}:80" for i in range(1, n + 1)]


@pytest.mark.parametrize(("min_healthy", "hosts", "size"), [
    (None, 5, 1),
    ("66%", 3, 1),          # keep ceil(1.98) = 2
    ("50%", 4, 2),
    ("75%", 10, 2),         # keep ceil(7.5) = 8
    ("64.4%", 250, 89),     # keep exactly 161 (float arithmetic says 162)
    ("0%", 4, 4),
    ("100%", 3, 1),         # the floor cannot be kept: one at a time
    (2, 5, 3),
    (3, 3, 1),              # count == hosts: one at a time
    (9, 3, 1),
    (0, 3, 3),
])
def test_batch_size(min_healthy: str | int | None, hosts: int, size: int) -> None:
    parsed = None if min_healthy is None else MinHealthy.parse(min_healthy)
    assert batch_size(parsed, hosts) == size


def test_stage_plan_example() -> None:
    view = stage(targets={"cell-1": ["h1:1", "h2:1", "h3:1"], "cell-2": ["h4:1", "H1:1"]}, min_healthy="66%",
                 hooks=("validate", "stop", "start"))
    plan = stage_plan(view)
    assert [hook.phase for hook in plan.hooks] == ["stop", "start", "validate"]
    assert plan.targets[0].batches == (("h1:1",), ("h2:1",), ("h3:1",))
    assert plan.targets[1].batches == (("h4:1",), ("H1:1",))  # another target: its own host list


def test_repeated_host_is_deployed_once() -> None:
    plan = target_plan(TargetView("cell", ("A.example:80", "b:80", "a.EXAMPLE.:080")), MinHealthy.parse("0%"))
    assert plan.hosts == ("A.example:80", "b:80") and plan.batches == (("A.example:80", "b:80"),)


def test_hook_order_keeps_only_present() -> None:
    assert [h.phase for h in hook_order(stage(hooks=("install",)))] == ["install"]
    assert hook_order(stage(hooks=())) == ()


def test_subset_keeps_target_batching() -> None:
    target = TargetView("cell", tuple(hosts_of(4)))
    plan = subset_plan(target, MinHealthy.parse("50%"), ["10.0.0.4:80", "10.0.0.1:80", "10.0.0.3:80"])
    assert plan.batch_size == 2
    assert plan.batches == (("10.0.0.1:80", "10.0.0.3:80"), ("10.0.0.4:80",))


def test_batches_rejects_empty_size() -> None:
    with pytest.raises(ValueError):
        batches(["a:1"], 0)


percentages = st.builds(lambda whole, frac: Decimal(f"{whole}.{frac:02d}") if whole < 100 else Decimal(100),
                        st.integers(0, 100), st.integers(0, 99))
min_healthy_values = st.one_of(
    st.none(),
    percentages.map(lambda p: MinHealthy(percent=p)),
    st.integers(0, 60).map(lambda n: MinHealthy(count=n)),
)


def reference_kept(min_healthy: MinHealthy | None, hosts: int) -> int:
    """engine.md's floor, computed straight from its words."""
    if min_healthy is None:
        return hosts - 1
    if min_healthy.percent is not None:
        return math.ceil(Fraction(str(min_healthy.percent)) * hosts / 100)
    assert min_healthy.count is not None
    return min_healthy.count


@given(min_healthy_values, st.integers(1, 60))
def test_batches_cover_hosts_in_order_and_keep_the_floor(min_healthy: MinHealthy | None, count: int) -> None:
    hosts = hosts_of(count)
    plan = target_plan(TargetView("cell", tuple(hosts)), min_healthy)
    flat = [host for batch in plan.batches for host in batch]
    assert flat == hosts  # every host once, in the listed order
    assert all(plan.batches)
    wanted = reference_kept(min_healthy, count)
    expected_size = max(1, count - wanted)
    assert plan.batch_size == expected_size
    assert all(len(batch) <= expected_size for batch in plan.batches)
    for batch in plan.batches:
        in_service = count - len(batch)
        # at least the floor, except where it cannot be kept: then one host at a time
        assert in_service >= wanted or len(batch) == 1
        assert in_service >= min(wanted, count - 1)
    assert plan.kept == count - expected_size
