"""Exceptions a handler author raises to say how a step failed, and the SDK's own errors."""

from __future__ import annotations

import math
from typing import Any

from tasker_shared.errors import TaskerError

__all__ = [
    "BusinessLogicError",
    "ConfigurationError",
    "HandlerNotFound",
    "NotFoundError",
    "PermanentError",
    "RateLimitError",
    "RetryableError",
    "ServiceUnavailableError",
    "StepCancelled",
    "StepError",
    "ValidationError",
]


class StepError(TaskerError):
    """Base of handler-raised failures; `retryable` and `error_type` go into the step result.

    Each subclass's `retryable` agrees with `tasker_shared.domain.classify` (its class name
    is in the classifier's permanent or retryable list).
    """

    retryable: bool = True
    error_type: str = "handler_error"
    code = "step_error"

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status_code: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=context)
        self.error_code = error_code
        self.status_code = status_code
        self.context: dict[str, Any] = dict(context or {})


class PermanentError(StepError):
    """A failure that will not go away on retry (bad input, missing entity, rule broken)."""

    retryable = False
    error_type = "permanent_error"


class ValidationError(PermanentError):
    """The step's inputs are invalid."""

    error_type = "validation_error"


class NotFoundError(PermanentError):
    """Something the step needs does not exist."""

    error_type = "not_found"


class ConfigurationError(PermanentError):
    """The handler or its step configuration is wrong."""

    error_type = "configuration_error"


class BusinessLogicError(PermanentError):
    """A business rule refuses the operation."""

    error_type = "business_logic_error"


class RetryableError(StepError):
    """A transient failure; `retry_after` (seconds or an HTTP date) asks for a minimum wait."""

    retryable = True
    error_type = "retryable_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: str | float | None = None,
        error_code: str | None = None,
        status_code: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, error_code=error_code, status_code=status_code, context=context)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str | None:
        """`retry_after` as a Retry-After header value (whole seconds rounded up, or the date)."""
        return retry_after_header(self.retry_after)


class RateLimitError(RetryableError):
    """The remote side is rate limiting (HTTP 429 by default)."""

    error_type = "rate_limit"

    def __init__(
        self,
        message: str,
        *,
        retry_after: str | float | None = None,
        error_code: str | None = None,
        status_code: int | None = 429,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            retry_after=retry_after,
            error_code=error_code,
            status_code=status_code,
            context=context,
        )


class ServiceUnavailableError(RetryableError):
    """The remote service is down or overloaded (HTTP 503 by default)."""

    error_type = "service_unavailable"

    def __init__(
        self,
        message: str,
        *,
        retry_after: str | float | None = None,
        error_code: str | None = None,
        status_code: int | None = 503,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            retry_after=retry_after,
            error_code=error_code,
            status_code=status_code,
            context=context,
        )


class StepCancelled(PermanentError):
    """The run was cancelled (`StepContext.check_cancelled`); its result is not used."""

    error_type = "cancelled"


class HandlerNotFound(TaskerError):
    """No handler could be resolved for a step's callable; never retryable."""

    code = "handler_not_found"
    error_type = "handler_not_found"
    retryable = False

    def __init__(self, callable_name: str, reason: str) -> None:
        super().__init__(
            f"handler not found for {callable_name!r}: {reason}",
            details={"callable": callable_name, "reason": reason},
        )
        self.callable_name = callable_name
        self.reason = reason


def retry_after_header(value: str | float | None) -> str | None:
    """A Retry-After header value: numbers become whole seconds (rounded up, ≥0); text as is."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if not math.isfinite(value):
        raise ValueError(f"retry_after must be finite, got {value!r}")
    return str(max(0, math.ceil(value)))
