"""Serves tasker.v1 (plus grpc.health.v1 and server reflection) with grpclib inside a
trio-asyncio loop, as a drainable Runtime component."""

from __future__ import annotations

from typing import Any

import structlog
import trio
import trio_asyncio
from grpclib.events import RecvRequest, SendTrailingMetadata, listen
from grpclib.server import Server
from trio_asyncio import aio_as_trio

from tasker_gateway.context import GatewayContext
from tasker_gateway.grpc.bridge import ServerHooks
from tasker_gateway.grpc.servicers_ops import (
    AnalyticsService,
    ConfigService,
    DlqService,
    HealthService,
    TemplateService,
)
from tasker_gateway.grpc.servicers_tasks import StepService, TaskService

log = structlog.get_logger("tasker.gateway.grpc")


def services(ctx: GatewayContext) -> list[Any]:
    """The tasker.v1 servicers, plus grpc.health.v1 and reflection when enabled."""
    api: list[Any] = [TaskService(ctx), StepService(ctx), TemplateService(ctx),
                      HealthService(ctx), AnalyticsService(ctx), DlqService(ctx),
                      ConfigService(ctx)]
    extra: list[Any] = []
    gateway = ctx.settings.gateway
    try:
        if gateway.grpc_health_service:
            from grpclib.health.check import ServiceCheck
            from grpclib.health.service import OVERALL, Health

            async def serving() -> bool:
                return ctx.accepting()

            check = ServiceCheck(serving, check_ttl=1.0)
            extra.append(Health({OVERALL: [check], **{svc: [check] for svc in api}}))
        if gateway.grpc_reflection:
            from grpclib.reflection.service import ServerReflection

            from tasker_gateway.grpc.reflection import descriptor_pool

            return ServerReflection.extend(api + extra, pool=descriptor_pool())
    except ImportError as exc:  # pragma: no cover - protobuf is missing from the install
        log.warning("grpc_health_reflection_unavailable", error=str(exc))
    return api + extra


class GrpcServer:
    """`run` serves until `stop`, then closes the server (open calls are cancelled)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._stop = trio.Event()
        self.hooks = ServerHooks(ctx)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        gateway = self.ctx.settings.gateway
        async with trio_asyncio.open_loop():
            server = Server(services(self.ctx))
            listen(server, RecvRequest, self.hooks.on_request)
            listen(server, SendTrailingMetadata, self.hooks.on_trailers)
            await aio_as_trio(server.start)(gateway.grpc_host, gateway.grpc_port)
            log.info("grpc_serving", action="start", host=gateway.grpc_host,
                     port=gateway.grpc_port)
            task_status.started()
            try:
                await self._stop.wait()
            finally:
                server.close()
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await aio_as_trio(server.wait_closed)()

    def stop(self) -> None:
        self._stop.set()
