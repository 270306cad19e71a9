"""gRPC and network failures as tasker_client.errors classes, so callers catch one hierarchy."""

from __future__ import annotations

import re

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from tasker_client.errors import (
    AuthError,
    ConflictError,
    DeadlineExceeded,
    NotFoundError,
    PermissionDenied,
    RpcError,
    TaskerError,
    TransitionRejected,
    Unavailable,
    ValidationError,
)

_BY_STATUS: dict[Status, type[TaskerError]] = {
    Status.NOT_FOUND: NotFoundError,
    Status.ALREADY_EXISTS: ConflictError,
    Status.INVALID_ARGUMENT: ValidationError,
    Status.OUT_OF_RANGE: ValidationError,
    Status.UNAUTHENTICATED: AuthError,
    Status.PERMISSION_DENIED: PermissionDenied,
    Status.FAILED_PRECONDITION: TransitionRejected,
    Status.DEADLINE_EXCEEDED: DeadlineExceeded,
}

_RETRY_AFTER = re.compile(r"retry[ _-]after[^0-9]{0,12}(\d+)", re.IGNORECASE)
# How the gateway names the task a duplicate identity collides with (ALREADY_EXISTS).
_EXISTING = re.compile(r"existing task ([0-9a-fA-F-]{36})\b")


def retry_after_hint(message: str) -> int:
    """Seconds the server asked us to wait ("retry after 5s" in its message), else 0."""
    match = _RETRY_AFTER.search(message)
    return int(match.group(1)) if match else 0


def from_grpc(exc: GRPCError) -> TaskerError:
    """The TaskerError for a GRPCError, keeping the server's message."""
    status = exc.status
    message = exc.message or status.name.lower().replace("_", " ")
    if status in (Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED):
        err: TaskerError = Unavailable(message, retry_after=retry_after_hint(message))
    elif status in _BY_STATUS:
        err = _BY_STATUS[status](message)
    else:
        err = RpcError(message, status=status.name)
    existing = _EXISTING.search(message) if status is Status.ALREADY_EXISTS else None
    if existing:
        err.details["existing_task_uuid"] = existing.group(1)
    err.details.setdefault("grpc_status", status.name)
    return err


def translate(exc: Exception, *, target: str = "gateway") -> TaskerError | None:
    """A gRPC or network failure as a TaskerError; None for anything else (a bug: let it rise)."""
    if isinstance(exc, TaskerError):
        return exc
    if isinstance(exc, GRPCError):
        return from_grpc(exc)
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded(f"deadline exceeded waiting for the {target}")
    if isinstance(exc, StreamTerminatedError | OSError):
        reason = str(exc) or exc.__class__.__name__
        return Unavailable(f"cannot reach the {target}: {reason}", retry_after=0)
    if isinstance(exc, ProtocolError):
        return RpcError(f"gRPC protocol error: {exc}", status="INTERNAL")
    return None
