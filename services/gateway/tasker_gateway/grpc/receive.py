"""How the gRPC server reads requests: a size bound checked on the length prefix, before the
message is buffered (grpclib has none), decoding by `codec.decode` (large messages in a worker
thread, so the event loop keeps answering), clear statuses for empty, truncated and
compressed messages, a count of the unary calls in flight for the drain to wait on, and
word of a call its client abandoned (`on_cancelled`).

`Receiver.on_request` listens to grpclib's RecvRequest event and wraps the method it is
about to run so that the handler's stream reads through `LimitedStream.recv_message`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from grpclib.const import Status
from grpclib.events import RecvRequest
from grpclib.exceptions import GRPCError, StreamTerminatedError

from tasker_gateway.grpc.codec import decode, invalid

# Messages above this are decoded in a worker thread (the GIL still lets the loop run).
THREAD_DECODE_BYTES = 65_536


class LimitedStream:
    """A grpclib server Stream whose `recv_message` refuses messages over `limit` bytes."""

    def __init__(self, stream: Any, message_type: Any, limit: int, *,
                 unary_request: bool) -> None:
        self._stream = stream
        self._message_type = message_type
        self._limit = limit
        self._unary_request = unary_request
        self._received = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self) -> LimitedStream:
        return self

    async def __anext__(self) -> Any:
        message = await self.recv_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def _read(self, size: int, *, message_start: bool = False) -> bytes:
        """`size` bytes of the request (b"" if it ended before `message_start`)."""
        try:
            # grpclib's protocol stream: it has no public way to read the prefix first
            data: bytes | None = await self._stream._stream.recv_data(size)
        except AssertionError:  # grpclib's buffer: the stream ended inside a message
            data = None
        if data == b"" and message_start:
            return data
        if data is None or len(data) != size:
            raise invalid("the request message is truncated")
        return data

    async def recv_message(self) -> Any:
        prefix = await self._read(5, message_start=True)
        if not prefix:
            if self._unary_request and self._received == 0:
                raise invalid("the call carries no request message")
            return None
        if prefix[0]:
            raise GRPCError(Status.UNIMPLEMENTED, "compressed messages are not supported;"
                                                  " send them uncompressed")
        size = int.from_bytes(prefix[1:5], "big")
        if size > self._limit:
            raise GRPCError(Status.RESOURCE_EXHAUSTED,
                            f"the request message is {size} bytes; the gateway accepts at"
                            f" most {self._limit} bytes (gateway.grpc_max_message_bytes)")
        data = await self._read(size) if size else b""
        if size > THREAD_DECODE_BYTES:
            message = await asyncio.get_running_loop().run_in_executor(
                None, decode, data, self._message_type)
        else:
            message = decode(data, self._message_type)
        self._received += 1
        return message


def client_gone(stream: Any, exc: BaseException) -> bool:
    """True when `exc` ends a handler because its client reset the call or its connection
    closed (grpclib cancels the handler with a StreamTerminatedError as the reason)."""
    if isinstance(exc, StreamTerminatedError):
        return True
    wrapper = getattr(getattr(stream, "_stream", None), "wrapper", None)
    return isinstance(getattr(wrapper, "_error", None), StreamTerminatedError)


class Receiver:
    """RecvRequest listener: bounded reading for every call; counts unary calls in flight;
    calls `on_cancelled` in the call's task when its client abandons it."""

    def __init__(self, mapping: dict[str, Any], limit: int,
                 on_cancelled: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.on_cancelled = on_cancelled
        self._methods = {name: (handler.cardinality, handler.request_type)
                         for name, handler in mapping.items()}
        self.in_flight = 0
        self._idle = asyncio.Event()

    async def wait_idle(self) -> None:
        """Return once no unary call is in flight."""
        while self.in_flight:
            self._idle.clear()
            await self._idle.wait()

    async def on_request(self, event: RecvRequest) -> None:
        found = self._methods.get(event.method_name)
        if found is None:
            return
        cardinality, message_type = found
        method = event.method_func
        counted = not cardinality.server_streaming
        unary_request = not cardinality.client_streaming

        async def bounded(stream: Any) -> None:
            if counted:
                self.in_flight += 1
            try:
                limited: Any = LimitedStream(stream, message_type, self.limit,
                                             unary_request=unary_request)
                await method(limited)
            except (asyncio.CancelledError, StreamTerminatedError) as exc:
                if self.on_cancelled is not None and client_gone(stream, exc):
                    self.on_cancelled()
                raise
            finally:
                if counted:
                    self.in_flight -= 1
                    if not self.in_flight:
                        self._idle.set()

        event.method_func = bounded
