"""The asyncio side of the gRPC server: server event hooks (a span continuing the caller's
`traceparent`, authentication, trailers, metrics and the access log) and `call`, which runs
a Trio use case from a grpclib handler and maps its errors.

grpclib runs each call in its own asyncio task; the hooks and the handler run in that task, so
per-call state travels in context variables.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from grpclib.const import Status
from grpclib.events import RecvRequest, SendTrailingMetadata
from grpclib.exceptions import GRPCError
from opentelemetry.trace import Span, StatusCode
from trio_asyncio import trio_as_aio

from tasker_gateway.auth import ANONYMOUS, Principal
from tasker_gateway.context import GatewayContext
from tasker_gateway.errors import classify
from tasker_gateway.metrics import answered
from tasker_gateway.permissions import grpc_permission
from tasker_shared.errors import TaskerError, Unavailable
from tasker_shared.runtime.tracing import start_server_span

log = structlog.get_logger("tasker.gateway.grpc")
T = TypeVar("T")

RETRY_AFTER_KEY = "retry-after"
EXISTING_TASK_KEY = "existing-task-uuid"  # trailer of ALREADY_EXISTS for a duplicate identity
REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_principal: ContextVar[Principal] = ContextVar("tasker_principal", default=ANONYMOUS)
_retry_after: ContextVar[int | None] = ContextVar("tasker_retry_after", default=None)
_existing: ContextVar[str | None] = ContextVar("tasker_existing_task", default=None)
# Server-side failures: their span is marked as an error.
_SERVER_FAULTS = frozenset({Status.UNKNOWN, Status.INTERNAL, Status.UNAVAILABLE,
                            Status.DATA_LOSS, Status.DEADLINE_EXCEEDED})


@dataclass(slots=True)
class _Call:
    method: str
    started: float
    request_id: str
    span: Span
    answered: bool = False


_call_info: ContextVar[_Call | None] = ContextVar("tasker_call", default=None)


def principal() -> Principal:
    """The caller of the current gRPC call."""
    return _principal.get()


def to_grpc_error(exc: BaseException) -> GRPCError:
    """The GRPCError reporting `exc`; a retry hint goes out as `retry-after` trailer."""
    info = classify(exc)
    if info.retry_after is not None:
        _retry_after.set(info.retry_after)
    if isinstance(exc, TaskerError) and isinstance(exc.details.get("existing_task_uuid"), str):
        _existing.set(exc.details["existing_task_uuid"])
    if info.grpc_status is Status.INTERNAL:
        call_info = _call_info.get()
        log.error("grpc_call_failed", action="grpc", method=call_info and call_info.method,
                  request_id=call_info and call_info.request_id, exc_info=exc)
    message = info.message
    if info.retry_after is not None:
        message = f"{message} (retry after {info.retry_after}s)"
    return GRPCError(info.grpc_status, message)


async def call(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """`await fn(*args, **kwargs)` in Trio, from asyncio; failures become GRPCErrors."""
    try:
        result: T = await trio_as_aio(fn)(*args, **kwargs)
    except GRPCError:
        raise
    except Exception as exc:
        raise to_grpc_error(exc) from None
    return result


class _Headers:
    """gRPC metadata seen through the `get` the authenticator needs (text values only)."""

    def __init__(self, metadata: Any) -> None:
        self._metadata = metadata

    def get(self, key: str) -> str | None:
        value = self._metadata.get(key)
        return value if isinstance(value, str) else None


class ServerHooks:
    """RecvRequest: open the call's span, authenticate and authorise; SendTrailingMetadata:
    retry hint, request id, then metrics, access log and the span's end (`cancelled` does
    that for a call the client abandoned, which gets no trailers worth the name)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def on_request(self, event: RecvRequest) -> None:
        given = event.metadata.get(REQUEST_ID_KEY)
        request_id = given if isinstance(given, str) and _REQUEST_ID.fullmatch(given) else str(
            uuid.uuid4())
        service, _, rpc = event.method_name.strip("/").rpartition("/")
        span = start_server_span(event.method_name.lstrip("/"), event.metadata, attributes={
            "rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc,
            "tasker.request_id": request_id})
        _call_info.set(_Call(method=event.method_name, started=time.perf_counter(),
                             request_id=request_id, span=span))
        _retry_after.set(None)
        _existing.set(None)
        _principal.set(ANONYMOUS)
        try:
            permission = grpc_permission(event.method_name)
        except KeyError:
            raise GRPCError(Status.PERMISSION_DENIED,
                            f"{event.method_name} has no permission defined") from None
        if permission is None:
            return
        try:
            if not self.ctx.accepting():
                raise Unavailable(f"the gateway is {self.ctx.runtime.state}; retry shortly",
                                  retry_after=5)
            caller = self.ctx.auth.authenticate(_Headers(event.metadata))
            self.ctx.auth.authorize(caller, permission)
        except TaskerError as exc:
            raise to_grpc_error(exc) from None
        _principal.set(caller)
        span.set_attribute("tasker.principal", caller.subject)

    async def on_trailers(self, event: SendTrailingMetadata) -> None:
        retry = _retry_after.get()
        if retry is not None:
            event.metadata[RETRY_AFTER_KEY] = str(retry)
        existing = _existing.get()
        if existing is not None:
            event.metadata[EXISTING_TASK_KEY] = existing
        info = _call_info.get()
        if info is not None:
            event.metadata[REQUEST_ID_KEY] = info.request_id
            _finish(info, event.status)

    def cancelled(self) -> None:
        """The client cancelled the call (or its connection went away): CANCELLED, not the
        UNKNOWN grpclib would report for the interrupted handler."""
        info = _call_info.get()
        if info is not None:
            _finish(info, Status.CANCELLED)


def _finish(info: _Call, status: Status) -> None:
    if info.answered:
        return
    info.answered = True
    info.span.set_attribute("rpc.grpc.status_code", status.value)
    if status in _SERVER_FAULTS:
        info.span.set_status(StatusCode.ERROR, status.name)
    info.span.end()
    answered(transport="grpc", method="grpc", route=info.method, operation=info.method,
             status=status.name, seconds=time.perf_counter() - info.started,
             principal=_principal.get().subject, request_id=info.request_id)
