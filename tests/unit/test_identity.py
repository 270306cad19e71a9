"""Unit and property tests for tasker_shared.domain.identity."""

from __future__ import annotations

import hashlib
import uuid
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasker_shared.domain.identity import IdentityStrategy, canonical_json, identity_hash
from tasker_shared.errors import ValidationError

NAMED = uuid.UUID("0190b8a0-0000-7000-8000-000000000001")
OTHER = uuid.UUID("0190b8a0-0000-7000-8000-000000000002")


def _fixed_uuid() -> uuid.UUID:
    return uuid.UUID("0190b8a0-1111-7000-8000-000000000003")


def _hash(
    context: Any = None,
    *,
    strategy: str = "strict",
    key: str | None = None,
    named: uuid.UUID = NAMED,
) -> str:
    return identity_hash(
        strategy=strategy,
        named_task_uuid=named,
        context={} if context is None else context,
        idempotency_key=key,
        new_uuid=_fixed_uuid,
    )


class Level(IntEnum):
    HIGH = 3


class TestCanonicalJson:
    def test_sorted_compact_unicode(self) -> None:
        assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
            '{"a":{"c":"é","d":[1,2]},"b":1}'
        )

    def test_numbers_normalised(self) -> None:
        assert canonical_json([1.0, -0.0, 1e20, 1.5, True, False, None, Level.HIGH]) == (
            "[1,0,100000000000000000000,1.5,true,false,null,3]"
        )
        assert canonical_json((1, "x")) == '[1,"x"]'

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"x": -float("inf")}])
    def test_non_finite_rejected(self, bad: Any) -> None:
        with pytest.raises(ValidationError, match="non-finite"):
            canonical_json(bad)

    def test_non_string_key_rejected(self) -> None:
        with pytest.raises(ValidationError, match="keys must be strings"):
            canonical_json({1: "x"})

    def test_non_json_value_rejected(self) -> None:
        with pytest.raises(ValidationError, match="not JSON: set"):
            canonical_json({"x": {1, 2}})


class TestIdentityHash:
    def test_strict_is_stable_hex(self) -> None:
        h = _hash({"order": 1})
        assert h == _hash({"order": 1})
        assert len(h) == 64
        int(h, 16)
        assert h != _hash({"order": 2})
        assert h != _hash({"order": 1}, named=OTHER)

    def test_strict_numbers(self) -> None:
        assert _hash({"n": 1}) == _hash({"n": 1.0})
        assert _hash({"n": True}) != _hash({"n": 1})

    def test_strategy_enum_accepted(self) -> None:
        assert _hash({"a": 1}, strategy=IdentityStrategy.STRICT) == _hash({"a": 1})

    def test_key_overrides_every_strategy(self) -> None:
        expected = _hash(key="abc")
        for strategy in IdentityStrategy:
            assert _hash({"x": 1}, strategy=strategy, key="abc") == expected
        assert _hash(key="abc") != _hash(key="abd")
        assert _hash(key="abc") != _hash(key="abc", named=OTHER)
        assert len(expected) == 64

    def test_key_and_context_hashes_do_not_mix(self) -> None:
        assert _hash(key="{}") != _hash({})

    def test_length_prefix_is_used(self) -> None:
        body = f"15:idempotency_key36:{NAMED}1:k".encode()
        assert _hash(key="k") == hashlib.sha256(body).hexdigest()

    def test_empty_key_rejected(self) -> None:
        with pytest.raises(ValidationError, match="must not be empty"):
            _hash(key="")

    def test_caller_provided_requires_key(self) -> None:
        with pytest.raises(
            ValidationError,
            match=r"^idempotency_key is required for caller_provided identity strategy$",
        ):
            _hash(strategy="caller_provided")

    def test_always_unique(self) -> None:
        assert _hash({"a": 1}, strategy="always_unique") == str(_fixed_uuid())

    def test_unknown_strategy(self) -> None:
        with pytest.raises(ValidationError, match="unknown identity strategy"):
            _hash(strategy="sometimes")

    def test_invalid_context_rejected(self) -> None:
        with pytest.raises(ValidationError):
            _hash({"when": object()})


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _reorder(value: Any, rnd: st.DataObject) -> Any:
    if isinstance(value, dict):
        keys = rnd.draw(st.permutations(list(value)))
        return {k: _reorder(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_reorder(v, rnd) for v in value]
    return value


@given(context=st.dictionaries(st.text(max_size=6), json_value, max_size=6), data=st.data())
def test_property_key_order_invariance(context: dict[str, Any], data: st.DataObject) -> None:
    shuffled = _reorder(context, data)
    assert canonical_json(shuffled) == canonical_json(context)
    assert _hash(shuffled) == _hash(context)


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_property_int_float_equivalence(n: int) -> None:
    assert _hash({"n": n}) == _hash({"n": float(n)})


@given(st.text(min_size=1, max_size=200))
def test_property_key_hash_shape(key: str) -> None:
    h = _hash(key=key)
    assert len(h) <= 128
    assert all(c in "0123456789abcdef" for c in h)
