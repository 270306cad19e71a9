"""Error classification: is a handler failure worth retrying? (SPEC §6.1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PERMANENT_ERROR_NAMES",
    "RETRYABLE_ERROR_NAMES",
    "Classification",
    "classify_exception",
    "classify_http_status",
]

PERMANENT_ERROR_NAMES: frozenset[str] = frozenset(
    {
        "ValueError",
        "TypeError",
        "KeyError",
        "AttributeError",
        "IndexError",
        "AssertionError",
        "ImportError",
        "NotImplementedError",
        "PermanentError",
        "ValidationError",
        "NotFoundError",
        "AuthenticationError",
        "AuthorizationError",
        "ConfigurationError",
        "BusinessLogicError",
    }
)
"""Class names (anywhere in an exception's MRO) that mark a failure as permanent."""

RETRYABLE_ERROR_NAMES: frozenset[str] = frozenset(
    {
        "TimeoutError",
        "ConnectionError",
        "OSError",
        "RetryableError",
        "NetworkError",
        "RateLimitError",
        "ServiceUnavailableError",
        "ResourceContentionError",
    }
)
"""Class names (anywhere in an exception's MRO) that mark a failure as retryable."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Classification:
    """Whether a failure may be retried, and the `error_type` reported for it."""

    retryable: bool
    error_type: str


def classify_exception(exc: BaseException) -> Classification:
    """Classify `exc`: an explicit boolean `.retryable` wins, then the nearest known class
    in the MRO (by name, so user classes named e.g. `NotFoundError` count), else retryable.
    """
    error_type = type(exc).__name__
    explicit = getattr(exc, "retryable", None)
    if isinstance(explicit, bool):
        return Classification(retryable=explicit, error_type=error_type)
    for klass in type(exc).__mro__:
        if klass.__name__ in PERMANENT_ERROR_NAMES:
            return Classification(retryable=False, error_type=error_type)
        if klass.__name__ in RETRYABLE_ERROR_NAMES:
            return Classification(retryable=True, error_type=error_type)
    return Classification(retryable=True, error_type=error_type)


def classify_http_status(code: int) -> Classification:
    """Classify an HTTP error status: 408, 429 and 5xx are retryable, other 4xx permanent.

    `error_type` is `timeout` (408), `rate_limited` (429), `permanent_error` (other 4xx) or
    `retryable_error` (5xx). A status outside 400-599 is not an error: ValueError.
    """
    if not 400 <= code <= 599:
        raise ValueError(f"HTTP status {code} is not an error status (400-599)")
    if code == 408:
        return Classification(retryable=True, error_type="timeout")
    if code == 429:
        return Classification(retryable=True, error_type="rate_limited")
    if code >= 500:
        return Classification(retryable=True, error_type="retryable_error")
    return Classification(retryable=False, error_type="permanent_error")
