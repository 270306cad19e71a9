"""The gateway service: REST (also /health/* and /metrics) and gRPC from one process.

Both transports are drainable Runtime components over one GatewayContext. NOTIFY channels
feed the create-task waiters (the runtime's listener) and the task status streams (the
status hub's own listener, while someone watches); a background loop caches the queue
depths that backpressure decisions read.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import trio

from tasker_gateway.context import GatewayContext, build_context
from tasker_gateway.grpc.server import GrpcServer
from tasker_gateway.outcomes import OUTCOME_CHANNEL
from tasker_gateway.rest.server import RestServer
from tasker_shared.runtime.service import Runtime, service_runtime
from tasker_shared.runtime.settings import Settings


async def serve(
    settings: Settings,
    *,
    on_runtime: Callable[[Runtime], None] | None = None,
    on_context: Callable[[GatewayContext], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with service_runtime("gateway", settings, health_server=False) as rt:
        if on_runtime is not None:
            on_runtime(rt)
        ctx = build_context(settings, rt.db, rt, rt.processor_uuid)
        if on_context is not None:
            on_context(ctx)
        rt.on_notification(OUTCOME_CHANNEL, ctx.outcomes.on_notification)
        rt.on_reconnect(ctx.outcomes.resync)
        if settings.queues.deployment_mode.listens:  # transitions, while someone watches
            rt.add_background("status_listener", partial(ctx.hub.serve, rt.url))
        rt.add_background("backpressure", ctx.backpressure.run)
        await ctx.backpressure.refresh()
        rt.health_port = settings.gateway.rest_port  # /health/* is served by the REST app
        rt.add_drainable(RestServer(ctx))
        rt.add_drainable(GrpcServer(ctx))
        await rt.run(task_status=task_status)
