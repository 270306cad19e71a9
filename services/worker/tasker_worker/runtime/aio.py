"""The worker's asyncio event loop: `async def` handlers run there, awaited from Trio.

One standard asyncio loop per process, on its own thread, started on first use. Handlers
get a real asyncio loop (any asyncio library works, and a client cached by a handler module
stays on the loop it was made on); the Trio loop that claims, heartbeats and records is
never blocked by a handler, and no global asyncio state (event loop policy) is changed.

Trio cancellation of the awaiting task cancels the asyncio task (CancelledError at the
handler's next await) and waits, for a bounded time, for it to unwind.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import trio

T = TypeVar("T")

# How long a cancelled handler may take to unwind (its `finally` blocks, `except
# CancelledError` cleanup) before the worker stops waiting for it.
UNWIND_SECONDS = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def asyncio_loop() -> asyncio.AbstractEventLoop:
    """The process's handler loop, started on first use (a daemon thread runs it)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            # Not asyncio.new_event_loop(): with trio-asyncio imported in this process (the
            # gateway's gRPC), that would make a trio-asyncio loop instead of a plain one.
            loop = asyncio.DefaultEventLoopPolicy().new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(target=_serve, args=(loop, ready),
                                      name="tasker-asyncio-handlers", daemon=True)
            thread.start()
            ready.wait()
            _loop = loop
        return _loop


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


async def run_on_asyncio(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the handler loop and return (or raise) its outcome.

    The coroutine runs in a copy of the caller's context (tracing spans carry over). If
    the calling Trio task is cancelled, the asyncio task is cancelled too, then given up to
    UNWIND_SECONDS to finish before Cancelled propagates. A task cancelled by anything else
    (the handler cancelling itself) raises HandlerCancelled, an ordinary exception.
    """
    loop = asyncio_loop()
    token = trio.lowlevel.current_trio_token()
    context = contextvars.copy_context()
    done = trio.Event()
    holder: list[asyncio.Task[T]] = []

    def wake(_: object) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:  # the Trio run is gone: nobody waits any more
            pass

    def start() -> None:
        task = loop.create_task(_guarded(coro), context=context)
        task.add_done_callback(wake)
        holder.append(task)

    def cancel() -> None:
        for task in holder:
            task.cancel()

    try:
        loop.call_soon_threadsafe(start)
    except RuntimeError:  # the loop was closed under us
        coro.close()
        raise
    try:
        await done.wait()
    except trio.Cancelled:
        loop.call_soon_threadsafe(cancel)  # runs after `start`: the loop keeps call order
        with trio.CancelScope(shield=True), trio.move_on_after(UNWIND_SECONDS):
            await done.wait()
        raise
    task = holder[0]
    if task.cancelled():
        raise HandlerCancelled("the handler's asyncio task was cancelled, but not by the "
                               "worker (the step was neither cancelled nor timed out)")
    return task.result()


class HandlerCancelled(RuntimeError):
    """An asyncio handler ended cancelled without the worker asking for it."""


async def _guarded(coro: Coroutine[Any, Any, T]) -> T:
    """`coro`, with SystemExit and KeyboardInterrupt (which would stop the loop thread)
    turned into an ordinary failure of the handler."""
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise RuntimeError(f"the handler raised {type(exc).__name__}") from exc
