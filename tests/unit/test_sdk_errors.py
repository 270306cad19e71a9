"""Unit tests for tasker_worker.sdk.errors: flags agree with the domain classifier."""

from __future__ import annotations

import pytest

from tasker_shared.domain.classify import classify_exception
from tasker_shared.errors import TaskerError
from tasker_worker.sdk import (
    BusinessLogicError,
    ConfigurationError,
    HandlerNotFound,
    NotFoundError,
    PermanentError,
    RateLimitError,
    RetryableError,
    ServiceUnavailableError,
    StepError,
    ValidationError,
)
from tasker_worker.sdk.errors import retry_after_header

ALL = [
    StepError,
    PermanentError,
    ValidationError,
    NotFoundError,
    ConfigurationError,
    BusinessLogicError,
    RetryableError,
    RateLimitError,
    ServiceUnavailableError,
]


@pytest.mark.parametrize("cls", ALL)
def test_retryable_flag_matches_classifier(cls: type[StepError]) -> None:
    exc = cls("x")
    assert isinstance(exc, TaskerError)
    assert classify_exception(exc).retryable is exc.retryable


@pytest.mark.parametrize("cls", ALL)
def test_class_names_alone_classify_the_same(cls: type[StepError]) -> None:
    """With the attribute hidden (not a bool), the MRO names give the same answer."""
    probe = type("Probe", (cls,), {"retryable": None})
    assert classify_exception(probe("x")).retryable is cls.retryable


def test_permanent_and_retryable_flags() -> None:
    assert not PermanentError.retryable
    assert not ValidationError.retryable
    assert RetryableError.retryable
    assert RateLimitError.retryable
    assert StepError.retryable


def test_details() -> None:
    exc = PermanentError("no", error_code="E", status_code=422, context={"f": "x"})
    assert str(exc) == "no"
    assert exc.error_code == "E"
    assert exc.status_code == 422
    assert exc.context == {"f": "x"}
    assert exc.details == {"f": "x"}
    assert exc.error_type == "permanent_error"
    bare = StepError("bare")
    assert bare.context == {}
    assert bare.error_type == "handler_error"


def test_retryable_defaults() -> None:
    assert RateLimitError("x").status_code == 429
    assert ServiceUnavailableError("x").status_code == 503
    assert RetryableError("x").status_code is None
    exc = RetryableError("x", retry_after=2.5)
    assert exc.retry_after == 2.5
    assert exc.retry_after_header == "3"
    assert RetryableError("x").retry_after_header is None


def test_retry_after_header() -> None:
    assert retry_after_header(None) is None
    assert retry_after_header(10) == "10"
    assert retry_after_header(0.1) == "1"
    assert retry_after_header(-4) == "0"
    assert retry_after_header(" Wed, 01 Jan 2025 12:00:00 GMT") == "Wed, 01 Jan 2025 12:00:00 GMT"
    with pytest.raises(ValueError, match="finite"):
        retry_after_header(float("nan"))


def test_handler_not_found() -> None:
    exc = HandlerNotFound("pkg.Thing", "no such module")
    assert str(exc) == "handler not found for 'pkg.Thing': no such module"
    assert exc.retryable is False
    assert exc.code == "handler_not_found"
    assert exc.details == {"callable": "pkg.Thing", "reason": "no such module"}
    assert classify_exception(exc).retryable is False
