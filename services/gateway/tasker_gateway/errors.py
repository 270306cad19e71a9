"""Mapping of Tasker errors to HTTP statuses and gRPC codes: the only place that does it."""

from __future__ import annotations

from dataclasses import dataclass

from grpclib.const import Status

from tasker_shared.domain.limits import JsonLimitError
from tasker_shared.errors import (
    AuthError,
    ConflictError,
    ContractError,
    NotFoundError,
    PermissionDenied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TaskAlreadyFinished,
    TaskerError,
    TransitionRejected,
    Unavailable,
    ValidationError,
)


class UnprocessableRequest(ValidationError):
    """Well-formed request that ingestion refused (context fails the template's schema...)."""

    code = "unprocessable"


class Backpressure(Unavailable):
    """The system is refusing new tasks until its queues drain (SPEC 8.5)."""

    code = "backpressure"


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorInfo:
    """How one error is reported: HTTP status, gRPC status, code, message, retry hint."""

    http_status: int
    grpc_status: Status
    code: str
    message: str
    retry_after: int | None = None


INTERNAL_MESSAGE = "internal error; see the gateway logs for this request id"


def classify(exc: BaseException) -> ErrorInfo:
    """The ErrorInfo for `exc`; anything unexpected is an internal error (message hidden)."""
    if not isinstance(exc, TaskerError):
        return ErrorInfo(http_status=500, grpc_status=Status.INTERNAL, code="internal",
                         message=INTERNAL_MESSAGE)
    message = exc.message
    if isinstance(exc, Backpressure):
        return ErrorInfo(http_status=503, grpc_status=Status.RESOURCE_EXHAUSTED,
                         code=exc.code, message=message, retry_after=exc.retry_after)
    if isinstance(exc, Unavailable):
        return ErrorInfo(http_status=503, grpc_status=Status.UNAVAILABLE, code=exc.code,
                         message=message, retry_after=exc.retry_after)
    if isinstance(exc, JsonLimitError):  # too deep or too large: payload_too_large
        return ErrorInfo(http_status=413, grpc_status=Status.INVALID_ARGUMENT, code=exc.code,
                         message=message)
    if isinstance(exc, UnprocessableRequest):
        return ErrorInfo(http_status=422, grpc_status=Status.INVALID_ARGUMENT, code=exc.code,
                         message=message)
    if isinstance(exc, ValidationError | ContractError):
        return ErrorInfo(http_status=400, grpc_status=Status.INVALID_ARGUMENT,
                         code="validation_error", message=message)
    if isinstance(exc, NotFoundError):
        return ErrorInfo(http_status=404, grpc_status=Status.NOT_FOUND, code=exc.code,
                         message=message)
    if isinstance(exc, ConflictError):
        return ErrorInfo(http_status=409, grpc_status=Status.ALREADY_EXISTS, code=exc.code,
                         message=message)
    if isinstance(exc, TaskAlreadyFinished):
        return ErrorInfo(http_status=400, grpc_status=Status.FAILED_PRECONDITION,
                         code=exc.code, message=message)
    if isinstance(exc, TransitionRejected):
        return ErrorInfo(http_status=409, grpc_status=Status.FAILED_PRECONDITION,
                         code=exc.code, message=message)
    if isinstance(exc, AuthError):
        return ErrorInfo(http_status=401, grpc_status=Status.UNAUTHENTICATED, code=exc.code,
                         message=message)
    if isinstance(exc, PermissionDenied):
        return ErrorInfo(http_status=403, grpc_status=Status.PERMISSION_DENIED, code=exc.code,
                         message=message)
    if isinstance(exc, StoreError) and (exc.sqlstate or "").startswith("22"):
        return ErrorInfo(http_status=400, grpc_status=Status.INVALID_ARGUMENT,
                         code="validation_error",
                         message=f"the database refused a value: {message}")
    if isinstance(exc, StoreTimeout):
        return ErrorInfo(http_status=504, grpc_status=Status.DEADLINE_EXCEEDED, code=exc.code,
                         message="the database did not answer in time", retry_after=1)
    if isinstance(exc, StoreUnavailable) or (isinstance(exc, StoreError) and exc.retryable):
        return ErrorInfo(http_status=503, grpc_status=Status.UNAVAILABLE, code=exc.code,
                         message="the database is unavailable; retry shortly", retry_after=1)
    return ErrorInfo(http_status=500, grpc_status=Status.INTERNAL, code="internal",
                     message=INTERNAL_MESSAGE)
