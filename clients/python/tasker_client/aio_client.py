"""AioTaskerClient: the client for asyncio code; calls run on the caller's own event loop."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Self, TypeVar

from tasker_client.calls import GatewayCalls
from tasker_client.core import Call, StreamCall
from tasker_client.facade import AsyncFacade

R = TypeVar("R")
T = TypeVar("T")


class AioTaskerClient(GatewayCalls, AsyncFacade):
    """Typed Tasker gateway client for asyncio: `async with AioTaskerClient(...) as client:`.

    Every call has a deadline (`call_timeout`, default the client's `timeout`) spanning its
    retries; UNAVAILABLE is retried with exponential backoff. Use it on one event loop.
    """

    async def open(self) -> None:
        """Create the channel (it connects lazily, on the first call); idempotent."""
        await self._connection.open()

    async def aclose(self) -> None:
        """Close the channel; idempotent."""
        await self._connection.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _unary(self, call: Call[R]) -> R:
        return await self._connection.unary(call)

    def _stream(self, call: StreamCall[T]) -> AsyncGenerator[T, None]:
        return self._connection.stream(call)
