"""Unit tests for tasker_shared.domain.classify."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasker_shared.domain.classify import (
    PERMANENT_ERROR_NAMES,
    RETRYABLE_ERROR_NAMES,
    Classification,
    classify_exception,
    classify_http_status,
)
from tasker_shared.errors import StoreError, Unavailable, ValidationError


class NotFoundError(Exception):
    pass


class AuthenticationError(RuntimeError):
    pass


class RateLimitError(Exception):
    pass


class SpecificNotFound(NotFoundError):
    pass


class PermanentButConnection(ConnectionError):
    """Nearest MRO match wins: the class itself is not named, ConnectionError is."""


class ValueErrorNamedRetryable(ValueError):
    retryable = True


class WeirdRetryable(Exception):
    retryable = "yes"  # not a bool: ignored


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("x"),
        TypeError("x"),
        KeyError("x"),
        AttributeError("x"),
        IndexError("x"),
        AssertionError("x"),
        ImportError("x"),
        ModuleNotFoundError("x"),
        NotImplementedError("x"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
        NotFoundError("x"),
        SpecificNotFound("x"),
        AuthenticationError("x"),
    ],
)
def test_permanent(exc: BaseException) -> None:
    c = classify_exception(exc)
    assert c == Classification(retryable=False, error_type=type(exc).__name__)


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("x"),
        ConnectionError("x"),
        ConnectionResetError("x"),
        BrokenPipeError("x"),
        OSError("x"),
        FileNotFoundError("x"),
        RateLimitError("x"),
        PermanentButConnection("x"),
        RuntimeError("x"),
        Exception("x"),
        ZeroDivisionError("x"),
    ],
)
def test_retryable(exc: BaseException) -> None:
    c = classify_exception(exc)
    assert c.retryable is True
    assert c.error_type == type(exc).__name__


def test_explicit_attribute_wins() -> None:
    assert classify_exception(ValueErrorNamedRetryable("x")).retryable is True
    assert classify_exception(StoreError("x", retryable=True)).retryable is True
    assert classify_exception(StoreError("x")).retryable is False
    assert classify_exception(Unavailable("x", retry_after=1)).retryable is True
    assert classify_exception(ValidationError("x")).retryable is False
    exc = ConnectionError("x")
    exc.retryable = False  # type: ignore[attr-defined]
    assert classify_exception(exc).retryable is False


def test_non_bool_attribute_ignored() -> None:
    assert classify_exception(WeirdRetryable("x")).retryable is True


def test_name_sets_are_disjoint() -> None:
    assert not PERMANENT_ERROR_NAMES & RETRYABLE_ERROR_NAMES


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422, 405, 409, 410, 418, 499])
def test_http_permanent(code: int) -> None:
    assert classify_http_status(code) == Classification(
        retryable=False, error_type="permanent_error"
    )


@pytest.mark.parametrize("code", [500, 501, 502, 503, 504, 505, 520, 599])
def test_http_server_errors_retryable(code: int) -> None:
    assert classify_http_status(code) == Classification(
        retryable=True, error_type="retryable_error"
    )


def test_http_special_4xx() -> None:
    assert classify_http_status(408) == Classification(retryable=True, error_type="timeout")
    assert classify_http_status(429) == Classification(retryable=True, error_type="rate_limited")


@pytest.mark.parametrize("code", [0, 200, 302, 399, 600, 1000])
def test_http_non_error_rejected(code: int) -> None:
    with pytest.raises(ValueError, match="not an error status"):
        classify_http_status(code)


@given(st.integers(min_value=400, max_value=599))
def test_property_http_rule(code: int) -> None:
    assert classify_http_status(code).retryable == (code >= 500 or code in (408, 429))
