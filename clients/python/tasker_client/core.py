"""The shared core on asyncio (grpclib's home): one channel, its stubs, deadlines and retries.

Every flavour runs its calls here: the asyncio client directly, the sync and Trio clients on
a private loop thread. A call is described by a `Call` (built in `tasker_client.calls`), so
request building, reply conversion, retries and error mapping exist once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from grpclib.client import Channel

from tasker_client.config import ClientConfig
from tasker_client.errors import TaskerError
from tasker_client.proto.tasker.v1 import (
    AnalyticsServiceStub,
    DlqServiceStub,
    HealthServiceStub,
    StepServiceStub,
    TaskServiceStub,
    TemplateServiceStub,
)
from tasker_client.retry import Attempts
from tasker_client.typehints import cache_type_hints

cache_type_hints()  # replies are parsed without resolving annotations again

R = TypeVar("R")
T = TypeVar("T")

Service = Literal["tasks", "steps", "templates", "dlq", "analytics", "health"]

_STUBS: dict[Service, Callable[..., Any]] = {
    "tasks": TaskServiceStub,
    "steps": StepServiceStub,
    "templates": TemplateServiceStub,
    "dlq": DlqServiceStub,
    "analytics": AnalyticsServiceStub,
    "health": HealthServiceStub,
}

NOT_OPEN = "the client is not open: use it as a context manager (`with` / `async with`)"


Trace = tuple[tuple[str, str], ...]
_TRACE_KEYS = ("traceparent", "tracestate")


def caller_trace() -> Trace:
    """The caller's W3C trace context (`traceparent`, `tracestate`) when the application uses
    OpenTelemetry, sent with the call so the gateway's span continues the caller's trace. The
    client never imports OpenTelemetry itself: without it this costs a dict lookup."""
    if "opentelemetry.trace" not in sys.modules:
        return ()
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((key, carrier[key]) for key in _TRACE_KEYS if key in carrier)


@dataclass(frozen=True, kw_only=True, slots=True)
class Call(Generic[R]):
    """One unary RPC: which method, the request, the call's deadline and how to read the reply.

    With `concurrency`, `request` is a sequence of requests for the same method, sent as that
    many calls (each with its own deadline and retries), at most `concurrency` in flight;
    `convert` then reads the list of replies, in which an error `keep` accepts stands in
    place of its reply (any other error cancels the calls still running and is raised).
    """

    service: Service
    method: str
    request: Any
    timeout: float | None
    convert: Callable[[Any], R]
    concurrency: int | None = None
    keep: Callable[[TaskerError], bool] | None = None
    trace: Trace = field(default_factory=caller_trace)  # taken where the call is made


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamCall(Generic[T]):
    """One server-streaming RPC; `timeout` bounds the whole stream (None: no deadline)."""

    service: Service
    method: str
    request: Any
    timeout: float | None
    trace: Trace = field(default_factory=caller_trace)


class Connection:
    """The gRPC channel and stubs of one client; every method runs on the loop that opened it."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._channel: Channel | None = None
        self._stubs: dict[Service, Any] = {}
        self._metadata: dict[str, str] = {}
        endpoint = config.endpoint
        self._target = f"gateway at {endpoint.host}:{endpoint.port}"

    async def open(self) -> None:
        """Create the channel on the running loop; idempotent."""
        if self._channel is not None:
            return
        endpoint = self.config.endpoint
        self._channel = Channel(endpoint.host, endpoint.port, ssl=True if endpoint.tls else None)
        metadata = self._metadata = self.config.credentials.metadata()
        self._stubs = {name: stub(self._channel, metadata=metadata) for name, stub in _STUBS.items()}

    async def close(self) -> None:
        """Close the channel; idempotent."""
        channel, self._channel, self._stubs = self._channel, None, {}
        if channel is not None:
            channel.close()

    def _method(self, service: Service, method: str) -> Callable[..., Any]:
        if self._channel is None:
            raise RuntimeError(NOT_OPEN)
        bound: Callable[..., Any] = getattr(self._stubs[service], method)
        return bound

    async def unary(self, call: Call[R]) -> R:
        """Run a unary call within its deadline, retrying UNAVAILABLE; TaskerError on failure."""
        method = self._method(call.service, call.method)
        if call.concurrency is not None:
            return call.convert(await self._fan_out(method, call))
        return call.convert(await self._attempt(method, call.request, call.timeout, call.trace))

    async def _fan_out(self, method: Callable[..., Any], call: Call[Any]) -> list[Any]:
        """Every request of `call`, at most `call.concurrency` at once; replies in order."""
        gate = asyncio.Semaphore(max(1, call.concurrency or 1))
        keep = call.keep or (lambda _: False)

        async def one(request: Any) -> Any:
            async with gate:
                try:
                    return await self._attempt(method, request, call.timeout, call.trace)
                except TaskerError as exc:
                    if keep(exc):
                        return exc
                    raise

        tasks = [asyncio.ensure_future(one(request)) for request in call.request]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()  # a no-op once done; the rest after a failure
            await asyncio.gather(*tasks, return_exceptions=True)

    def _extra(self, trace: Trace) -> dict[str, Any]:
        """Per-call stub arguments: the credentials plus the caller's trace context."""
        return {"metadata": {**self._metadata, **dict(trace)}} if trace else {}

    async def _attempt(self, method: Callable[..., Any], request: Any, budget: float | None,
                       trace: Trace = ()) -> Any:
        """One logical call: attempts within `budget` seconds (None: the client's timeout)."""
        attempts = Attempts(self.config.retry, budget or self.config.timeout, target=self._target)
        extra = self._extra(trace)
        while True:
            left = attempts.begin()
            try:
                return await method(request, timeout=left, **extra)
            except Exception as exc:
                await attempts.failed(exc)

    async def stream(self, call: StreamCall[T]) -> AsyncGenerator[T, None]:
        """The items of a streaming call; retried like a unary call until the first item."""
        method = self._method(call.service, call.method)
        attempts = Attempts(self.config.retry, call.timeout, target=self._target)
        received = False
        while True:
            left = attempts.begin()
            try:
                async with aclosing(method(call.request, timeout=left,
                                           **self._extra(call.trace))) as items:
                    async for item in items:
                        received = True
                        yield item
                return
            except Exception as exc:
                if received:  # the stream broke midway: resuming could repeat items
                    attempts.give_up(exc)
                await attempts.failed(exc)


async def next_or_none(items: AsyncIterator[T]) -> T | None:
    """The next item of an async iterator, or None once it is exhausted."""
    try:
        return await anext(items)
    except StopAsyncIteration:
        return None
