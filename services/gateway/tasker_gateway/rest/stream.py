"""GET /v1/tasks/{task_uuid}/stream: the updates of StreamTaskStatus (the same TaskWatch,
fed by the same transition NOTIFYs) as server-sent events.

Each update is one event named by its `update_type` (task_state_change, step_state_change,
task_complete, task_error) whose data is the StatusUpdate as JSON, with an increasing `id`;
a comment line every KEEPALIVE_SECONDS keeps proxies from closing a quiet stream. The
stream ends after the closing task_complete / task_error update, or with an `end` event
when the gateway drains (a reconnect starts again from the task's current state).

The watch runs in a task of the app's nursery and hands frames to the response through a
small channel: a slow reader only slows the watch down (its subscription then resyncs), a
client that goes away closes the channel and so ends the watch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from pydantic import BaseModel, ConfigDict, Field, RootModel
from quart import current_app

from tasker_gateway import permissions as P
from tasker_gateway.context import GatewayContext
from tasker_gateway.models.common import ApiModel
from tasker_gateway.models.tasks import StatusUpdate
from tasker_gateway.openapi import EVENT_STREAM
from tasker_gateway.rest.spec import Reply, RestRequest, Route
from tasker_gateway.usecases.inputs import parse_uuid
from tasker_gateway.usecases.watch import TaskWatch, open_watch

KEEPALIVE_SECONDS = 15.0
TICK_SECONDS = 1.0  # how often a stream checks whether the gateway drains
BUFFER = 16


class StreamParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    include_steps: bool = Field(True, description="also send each step's state changes")


class StreamEnd(ApiModel):
    """The data of the `end` event: the stream stops although the task goes on."""

    reason: str


class StreamEvent(RootModel[StatusUpdate | StreamEnd]):
    """The data of one event: an update (events named by its update_type), or `end`."""


END = StreamEnd(reason="the gateway is shutting down; reconnect to resume").model_dump_json()


def sse(event: str, data: str, *, event_id: int | None = None) -> bytes:
    """One server-sent event (`data` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


async def _watch(ctx: GatewayContext, watch: TaskWatch,
                 send: trio.MemorySendChannel[bytes]) -> None:
    """Send the watch's updates (and keep-alives) until it ends, the gateway drains or the
    reader goes away."""
    async def keepalive_and_drain(scope: trio.CancelScope) -> None:
        quiet = 0.0
        while ctx.accepting():
            await trio.sleep(TICK_SECONDS)
            quiet += TICK_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                await send.send(b": keep-alive\n\n")
        await send.send(sse("end", END))
        scope.cancel()

    try:
        async with send, trio.open_nursery() as nursery:
            nursery.start_soon(keepalive_and_drain, nursery.cancel_scope)
            number = 0
            async for update in watch:
                number += 1
                await send.send(sse(update.update_type.value, update.model_dump_json(),
                                    event_id=number))
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the reader went away
    finally:
        watch.close()


async def _frames(receive: trio.MemoryReceiveChannel[bytes]) -> AsyncIterator[bytes]:
    async with receive:
        async for frame in receive:
            yield frame


async def task_stream(req: RestRequest) -> Reply:
    params: StreamParams = req.query
    task_uuid = parse_uuid(req.path["task_uuid"], "task_uuid")
    watch = await open_watch(req.ctx, task_uuid, include_steps=params.include_steps)
    send, receive = trio.open_memory_channel[bytes](BUFFER)
    current_app.nursery.start_soon(_watch, req.ctx, watch, send)  # type: ignore[attr-defined]
    return Reply(status=200, body=_frames(receive), content_type=EVENT_STREAM,
                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/v1/tasks/{task_uuid}/stream", name="stream_task_status",
          handler=task_stream, summary="Live updates of a task as server-sent events (each"
          " event named by its update_type, data a StatusUpdate; ends after task_complete"
          " or task_error), the updates of gRPC StreamTaskStatus", tag="tasks",
          permission=P.TASKS_READ, query=StreamParams, responses={200: StreamEvent},
          errors=(404,), content_type=EVENT_STREAM, uuid_params=("task_uuid",)),
)
