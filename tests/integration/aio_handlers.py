"""Handlers of test_asyncio_handlers.py: asyncio ones doing real I/O with httpx, and a slow
handler of each kind (asyncio, Trio, sync) that reports how cancellation reached it.

The worker runs in the test's process, so the handlers report through `PROBES`."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sniffio
import trio

from tasker_worker.sdk import StepContext, step_handler


class Probe:
    """What one slow handler run saw: `started` when it began, then how it was stopped."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.seen: list[str] = []

    def saw(self, what: str) -> None:
        self.seen.append(what)
        self.stopped.set()


PROBES: defaultdict[tuple[str, str], Probe] = defaultdict(Probe)
"""By (task_uuid, handler kind)."""


def probe(ctx: StepContext, kind: str) -> Probe:
    return PROBES[(ctx.task_uuid, kind)]


_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One client (one connection pool) for all runs, as an application would keep it: it
    stays usable because every asyncio handler runs on the same loop."""
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))
    return _clients[loop]


@step_handler("aio.fetch")
async def fetch(ctx: StepContext) -> dict[str, Any]:
    """Two requests at once (one of them waits for 99 other handlers at the server's
    barrier), under asyncio.timeout, plus an asyncio.timeout that fires."""
    base = ctx.get_input("url")
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(30)
        inner_timeout = False
    except TimeoutError:
        inner_timeout = True
    client = _client()
    async with asyncio.timeout(60):
        together, echo = await asyncio.gather(
            client.get(f"{base}/barrier"),
            client.get(f"{base}/echo", params={"i": ctx.get_input("i")}))
    together.raise_for_status()
    echo.raise_for_status()
    return {"echo": echo.json(), "barrier": together.json(), "inner_timeout": inner_timeout,
            "library": sniffio.current_async_library(),
            "loop": type(asyncio.get_running_loop()).__module__}


async def _sleep_until_cancelled(ctx: StepContext, kind: str,
                                 sleep: Callable[[float], Awaitable[object]],
                                 cancelled: type[BaseException]) -> dict[str, Any]:
    run = probe(ctx, kind)
    run.started.set()
    try:
        await sleep(60)
    except cancelled:
        run.saw(f"{cancelled.__name__}; ctx.cancelled={ctx.cancelled}")
        raise
    run.saw("ran to the end")
    return {"finished": True}


@step_handler("aio.slow_asyncio")
async def slow_asyncio(ctx: StepContext) -> dict[str, Any]:
    return await _sleep_until_cancelled(ctx, "asyncio", asyncio.sleep, asyncio.CancelledError)


@step_handler("aio.slow_trio", runtime="trio")
async def slow_trio(ctx: StepContext) -> dict[str, Any]:
    return await _sleep_until_cancelled(ctx, "trio", trio.sleep, trio.Cancelled)


@step_handler("aio.slow_sync")
def slow_sync(ctx: StepContext) -> dict[str, Any]:
    run = probe(ctx, "sync")
    ctx.on_cancel(lambda reason: run.seen.append(f"callback: {reason}"))
    run.started.set()
    if ctx.wait_cancelled(60):
        run.saw(f"flag: {ctx.cancel_reason}")
        ctx.check_cancelled()
    run.saw("ran to the end")
    return {"finished": True}
