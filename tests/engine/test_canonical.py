"""Canonical JSON on the standard library, held byte-equal to the `rfc8785` package."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.engine.domain.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_json

# Text without lone surrogates (neither implementation can write those).
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False), text,
)
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)), max_leaves=20)


@given(values)
def test_equals_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def as_doubles(value: Any) -> Any:
    """`value` with every number as the double JSON reads it as (1 and 1.0 are one number)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [as_doubles(item) for item in value]
    return {key: as_doubles(item) for key, item in value.items()}


@given(values)
def test_reads_back_as_the_same_numbers(value: Any) -> None:
    # A float such as 6.890182727469271e16 is written as the whole number 68901827274692712... that
    # Python reads back as an int; as a double it is the same number, which is what JSON means.
    assert as_doubles(json.loads(canonical_json(value))) == as_doubles(value)


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (1e16, "10000000000000000"), (1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"),
    (-0.0, "0"), (123.456, "123.456"), (5e-324, "5e-324"),
    ({"b": 1, "a": [True, None, "\u00e9\n\x01"]}, '{"a":[true,null,"\u00e9\\n\\u0001"],"b":1}'),
    # UTF-16 order: U+1F600 (surrogates D83D..) sorts before U+FFFD, unlike code-point order
    ({"\ufffd": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ufffd":1}'),
])
def test_known_forms(value: Any, text: str) -> None:
    assert canonical_json(value) == text.encode("utf-8")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, -(2**53), "\ud800", {1: "x"}, {"\ud800": 1},
                                   object(), b"bytes"])
def test_refuses(value: Any) -> None:
    with pytest.raises(CanonicalError):
        canonical_json(value)
