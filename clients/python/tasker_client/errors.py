"""The errors a gateway call can raise: one hierarchy, no dependencies (the server reuses it)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DeadlineExceeded",
    "NotFoundError",
    "PermissionDenied",
    "RpcError",
    "TaskerError",
    "TransitionRejected",
    "Unavailable",
    "ValidationError",
]


class TaskerError(Exception):
    """Root of every error Tasker raises on purpose; `code` is stable, `retryable` advisory."""

    retryable: bool = False
    code: str = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class ConfigError(TaskerError):
    """Settings or environment are invalid or incomplete."""

    code = "config_error"


class ValidationError(TaskerError):
    """Input (a request, a template, a message) is malformed or breaks a rule."""

    code = "validation_error"


class NotFoundError(TaskerError):
    """The named entity does not exist."""

    code = "not_found"


class ConflictError(TaskerError):
    """A uniqueness rule was violated (duplicate task identity, etc.)."""

    code = "conflict"


class TransitionRejected(TaskerError):
    """A state transition was refused (unexpected current state or not allowed)."""

    code = "transition_rejected"


class Unavailable(TaskerError):
    """The system refuses work for now (backpressure, draining); retry after `retry_after`."""

    code = "unavailable"
    retryable = True

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after


class AuthError(TaskerError):
    """Missing or invalid credentials."""

    code = "unauthenticated"


class PermissionDenied(TaskerError):
    """Valid credentials lacking the required permission."""

    code = "permission_denied"


class DeadlineExceeded(TaskerError):
    """The call's deadline passed before the gateway answered."""

    code = "deadline_exceeded"


class RpcError(TaskerError):
    """Any other gRPC failure; `status` is the gRPC status name (e.g. "INTERNAL")."""

    code = "rpc_error"

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message, details={"grpc_status": status})
        self.status = status
