"""limits.json_depth: the depth of any JSON value, as a recursive definition gives it, found
level by level without recursion; with `stop_after`, the first depth past the bound."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tasker_shared.domain.limits import json_depth

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return 1 + max((depth(child) for child in value), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(value=values, bound=st.integers(0, 8))
def test_depth_matches_the_recursive_definition(value: Any, bound: int) -> None:
    expected = depth(value)
    assert json_depth(value) == expected
    assert json_depth(value, stop_after=bound) == (expected if expected <= bound else bound + 1)


def test_deep_values_need_no_recursion() -> None:
    value: Any = []
    for _ in range(200_000):
        value = {"k": [value, 1]}
    assert json_depth(value) == 400_001
    assert json_depth(value, stop_after=64) == 65
