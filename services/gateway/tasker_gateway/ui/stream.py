"""Server-sent events of one task's drawn DAG: the graph again whenever a transition NOTIFY
of the task arrives (bursts coalesced), else every resync interval; ends after `lifetime`
or when the gateway drains (the browser reconnects and resumes from a fresh graph)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
import trio

from tasker_gateway.context import GatewayContext
from tasker_gateway.ui.queries import task_graph
from tasker_shared.errors import TaskerError, Unavailable

log = structlog.get_logger("tasker.gateway.ui")

COALESCE_SECONDS = 0.2  # a burst of transitions becomes one push
KEEPALIVE_SECONDS = 15.0
LIFETIME_SECONDS = 50.0  # below quart's 60 s response timeout
TICK_SECONDS = 1.0  # how often a quiet stream checks whether the gateway drains


def to_json(value: Any) -> str:
    def default(item: Any) -> Any:
        if isinstance(item, UUID):
            return str(item)
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, Decimal):
            return float(item)
        raise TypeError(f"cannot encode {type(item).__name__}")

    return json.dumps(value, default=default, separators=(",", ":"))


def sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


async def task_events(ctx: GatewayContext, task_uuid: UUID, stopping: trio.Event, *,
                      lifetime: float = LIFETIME_SECONDS) -> AsyncIterator[bytes]:
    """Events `graph` (the task_graph JSON), then `end` (reconnect) or `error`. Ends within
    a tick of `stopping` being set: the response is sent shielded from the request's
    cancellation (see rest/connection.py), so a stopping server must say so this way."""

    def open_() -> bool:
        return ctx.accepting() and not stopping.is_set()

    if ctx.hub.active >= ctx.settings.gateway.max_streams:
        raise Unavailable("too many task status streams open; retry later", retry_after=5)
    sub = ctx.hub.subscribe(task_uuid)
    resync = (ctx.settings.gateway.stream_resync_seconds if ctx.runtime.listening
              else ctx.settings.queues.poll_interval_ms / 1000)
    staleness = ctx.settings.staleness
    try:
        deadline = trio.current_time() + lifetime
        last = ""
        quiet_since = trio.current_time()
        while open_() and trio.current_time() < deadline:
            try:
                body = to_json(await ctx.db.run_autocommit(task_graph, task_uuid, staleness))
            except TaskerError as exc:
                yield sse("error", to_json({"message": str(exc)}))
                return
            if body != last:
                last, quiet_since = body, trio.current_time()
                yield sse("graph", body)
            elif trio.current_time() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = trio.current_time()
                yield b": keep-alive\n\n"
            if await _wait(open_, sub.receive, min(resync, KEEPALIVE_SECONDS), deadline):
                await trio.sleep(COALESCE_SECONDS)
                _drain(sub.receive)
            sub.overflowed = False
        yield sse("end", "{}")
    finally:
        ctx.hub.unsubscribe(sub)


async def _wait(open_: Callable[[], bool], receive: trio.MemoryReceiveChannel[Any],
                seconds: float, deadline: float) -> bool:
    """True when an event arrived within `seconds`; checks for a drain every tick."""
    until = min(trio.current_time() + seconds, deadline)
    while open_() and trio.current_time() < until:
        with trio.move_on_after(min(TICK_SECONDS, until - trio.current_time())):
            try:
                await receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return False
            return True
    return False


def _drain(receive: trio.MemoryReceiveChannel[Any]) -> None:
    while True:
        try:
            receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return
