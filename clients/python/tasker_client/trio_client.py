"""TaskerClient: the client for Trio code (needs the `trio` extra); no trio-asyncio involved.

grpclib is asyncio code, so the core runs on a private asyncio loop in a daemon thread; a
Trio task waits for its call without blocking the Trio run, and cancelling it (a cancel
scope, a deadline) cancels the call on the loop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from concurrent.futures import Future
from types import TracebackType
from typing import Self, TypeVar

try:
    import outcome
    import trio
except ImportError as exc:
    raise ImportError(
        "the Trio flavour of tasker_client needs Trio: pip install 'tasker-client[trio]'"
    ) from exc

from tasker_client.calls import GatewayCalls
from tasker_client.core import NOT_OPEN, Call, StreamCall
from tasker_client.facade import AsyncFacade
from tasker_client.loop_thread import LoopStream, LoopThread

R = TypeVar("R")
T = TypeVar("T")


async def wait_future(future: Future[R]) -> R:
    """The result of a future completed by another thread; cancelling the wait cancels it."""
    task = trio.lowlevel.current_task()
    token = trio.lowlevel.current_trio_token()
    waiting = True

    def wake() -> None:  # in the Trio thread
        nonlocal waiting
        if waiting:
            waiting = False
            trio.lowlevel.reschedule(task, outcome.capture(future.result))

    def done(_: Future[R]) -> None:  # in whichever thread completed the future
        try:
            token.run_sync_soon(wake)
        except trio.RunFinishedError:  # pragma: no cover - the Trio run ended first
            pass

    def abort(_: object) -> trio.lowlevel.Abort:
        nonlocal waiting
        waiting = False
        future.cancel()
        return trio.lowlevel.Abort.SUCCEEDED

    future.add_done_callback(done)
    result: R = await trio.lowlevel.wait_task_rescheduled(abort)
    return result


class TaskerClient(GatewayCalls, AsyncFacade):
    """Typed Tasker gateway client for Trio: `async with TaskerClient(...) as client:`.

    Every call has a deadline (`call_timeout`, default the client's `timeout`) spanning its
    retries; UNAVAILABLE is retried with exponential backoff.
    """

    _loop: LoopThread | None = None

    async def __aenter__(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("TaskerClient is already open")
        loop = LoopThread(self._connection)
        try:
            await wait_future(loop.submit(self._connection.open()))
        except BaseException:
            loop.stop()
            raise
        self._loop = loop
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with trio.CancelScope(shield=True):
            try:
                await wait_future(loop.submit(loop.shutdown()))
            finally:
                await trio.to_thread.run_sync(loop.stop)

    def _running(self) -> LoopThread:
        if self._loop is None:
            raise RuntimeError(NOT_OPEN)
        return self._loop

    async def _unary(self, call: Call[R]) -> R:
        return await wait_future(self._running().submit(self._connection.unary(call)))

    async def _stream(self, call: StreamCall[T]) -> AsyncGenerator[T, None]:
        loop = self._running()
        stream = LoopStream(self._connection.stream(call))
        try:
            while (item := await wait_future(loop.submit(stream.next()))) is not None:
                yield item
        finally:
            with trio.CancelScope(shield=True):
                if not loop.closed:
                    await wait_future(loop.submit(stream.close()))
