"""A private asyncio loop in a daemon thread, where the sync and Trio clients run the core.

The host's own event loop, loop policy and threads are left alone: the loop is created
directly (not through the policy) and lives only as long as its client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from tasker_client.core import Connection, next_or_none

R = TypeVar("R")
T = TypeVar("T")

UNWIND_SECONDS = 2.0


class LoopThread:
    """Runs coroutines of one Connection on a loop in its own thread; any thread may submit."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tasker-client-loop", daemon=True
        )
        self._thread.start()
        self.closed = False

    def submit(self, coro: Coroutine[Any, Any, R]) -> Future[R]:
        """Schedule `coro` on the loop; cancelling the future cancels it there."""
        if self.closed:
            coro.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run `coro` and wait; an interrupt (KeyboardInterrupt) cancels it on the loop."""
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # a no-op once done
            raise

    async def shutdown(self) -> None:
        """On the loop: close the channel and end calls still in flight (ones a caller left)."""
        await self.connection.close()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=UNWIND_SECONDS)
        await self._loop.shutdown_asyncgens()

    def stop(self) -> None:
        """After `shutdown`: stop the loop and wait for its thread; idempotent."""
        if self._loop.is_closed():
            return
        self.closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class LoopStream(Generic[T]):
    """A core stream stepped from another thread; closable even while a step runs."""

    def __init__(self, items: AsyncGenerator[T, None]) -> None:
        self._items = items
        self._step: asyncio.Task[Any] | None = None

    async def next(self) -> T | None:
        """The next item, or None at the end (runs on the loop)."""
        self._step = asyncio.current_task()
        try:
            return await next_or_none(self._items)
        finally:
            self._step = None

    async def close(self) -> None:
        """Cancel a step still running (its caller was interrupted), then close the stream."""
        step = self._step
        if step is not None:
            step.cancel()
            await asyncio.wait({step}, timeout=UNWIND_SECONDS)
        await self._items.aclose()
