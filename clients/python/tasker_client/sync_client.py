"""SyncTaskerClient: the client for plain synchronous code, usable from any thread."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Self, TypeVar

from tasker_client.calls import GatewayCalls
from tasker_client.core import Call, StreamCall
from tasker_client.facade import SyncFacade
from tasker_client.loop_thread import LoopStream, LoopThread

R = TypeVar("R")
T = TypeVar("T")


class SyncTaskerClient(GatewayCalls, SyncFacade):
    """Blocking Tasker gateway client: `with SyncTaskerClient(...) as client:`.

    The gRPC channel lives on a private asyncio loop in a daemon thread, so calls work from
    any thread (also from threads of a Trio or asyncio program) and can be made concurrently.
    An interrupt (KeyboardInterrupt) while waiting cancels the call in flight.
    """

    def _started(self) -> None:
        self._loop = LoopThread(self._connection)
        self._loop.run(self._connection.open())

    def close(self) -> None:
        """Close the channel, end calls still in flight and stop the loop thread; idempotent."""
        if self._loop.closed:
            return
        try:
            self._loop.run(self._loop.shutdown())
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(self, call: Call[R]) -> R:
        return self._loop.run(self._connection.unary(call))

    def _stream(self, call: StreamCall[T]) -> Iterator[T]:
        stream = LoopStream(self._connection.stream(call))
        try:
            while (item := self._loop.run(stream.next())) is not None:
                yield item
        finally:
            if not self._loop.closed:
                self._loop.run(stream.close())
