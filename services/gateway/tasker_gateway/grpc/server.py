"""Serves tasker.v1 (plus grpc.health.v1 and server reflection) with grpclib inside a
trio-asyncio loop, as a drainable Runtime component; requests are read by `receive`."""

from __future__ import annotations

from typing import Any

import structlog
import trio
import trio_asyncio
from grpclib.events import RecvRequest, SendTrailingMetadata, listen
from grpclib.server import Server
from trio_asyncio import aio_as_trio, trio_as_aio

from tasker_gateway.context import GatewayContext
from tasker_gateway.grpc.bridge import ServerHooks
from tasker_gateway.grpc.codec import TaskerCodec
from tasker_gateway.grpc.receive import Receiver
from tasker_gateway.grpc.servicers_ops import (
    AnalyticsService,
    ConfigService,
    DlqService,
    HealthService,
    TemplateService,
)
from tasker_gateway.grpc.servicers_tasks import StepService, TaskService

log = structlog.get_logger("tasker.gateway.grpc")


class HealthChecks:
    """What grpc.health.v1 reports for every service: SERVING while the gateway is ready
    (the same predicate as REST /health/ready, re-read at most every second), NOT_SERVING
    from the moment it starts draining (pushed to Watch streams at once)."""

    def __init__(self, ctx: GatewayContext) -> None:
        from grpclib.health.check import ServiceCheck, ServiceStatus

        async def ready() -> bool:
            ok, _ = await trio_as_aio(ctx.runtime.readiness)()
            return bool(ok)

        self.ready = ServiceCheck(ready, check_ttl=1.0)
        self.open = ServiceStatus()

    def checks(self) -> list[Any]:
        return [self.ready, self.open]

    async def set_open(self, value: bool) -> None:
        self.open.set(value)


def services(ctx: GatewayContext, health: HealthChecks | None = None) -> list[Any]:
    """The tasker.v1 servicers, plus grpc.health.v1 (reporting `health`) and reflection
    when enabled."""
    api: list[Any] = [TaskService(ctx), StepService(ctx), TemplateService(ctx),
                      HealthService(ctx), AnalyticsService(ctx), DlqService(ctx),
                      ConfigService(ctx)]
    extra: list[Any] = []
    gateway = ctx.settings.gateway
    try:
        if gateway.grpc_health_service:
            from grpclib.health.service import OVERALL, Health

            checks = (health or HealthChecks(ctx)).checks()
            extra.append(Health({OVERALL: checks, **{svc: checks for svc in api}}))
        if gateway.grpc_reflection:
            from grpclib.reflection.service import ServerReflection

            from tasker_gateway.grpc.reflection import descriptor_pool

            return ServerReflection.extend(api + extra, pool=descriptor_pool())
    except ImportError as exc:  # pragma: no cover - protobuf is missing from the install
        log.warning("grpc_health_reflection_unavailable", error=str(exc))
    return api + extra


class GrpcServer:
    """`run` serves until `stop`; then grpc.health.v1 answers NOT_SERVING, new API calls
    UNAVAILABLE, and the server closes once the unary calls in flight have finished (or
    the runtime's shutdown deadline passes; open streams are then cancelled)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._stop = trio.Event()
        self.hooks = ServerHooks(ctx)
        self.receiver: Receiver | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        gateway = self.ctx.settings.gateway
        async with trio_asyncio.open_loop():
            health = HealthChecks(self.ctx) if gateway.grpc_health_service else None
            servicers = services(self.ctx, health)
            server = Server(servicers, codec=TaskerCodec())
            self.receiver = receiver = Receiver(
                {name: handler for svc in servicers for name, handler in
                 svc.__mapping__().items()}, gateway.grpc_max_message_bytes,
                on_cancelled=self.hooks.cancelled)
            listen(server, RecvRequest, receiver.on_request)
            listen(server, RecvRequest, self.hooks.on_request)
            listen(server, SendTrailingMetadata, self.hooks.on_trailers)
            if health is not None:
                await aio_as_trio(health.set_open)(True)
            await aio_as_trio(server.start)(gateway.grpc_host, gateway.grpc_port)
            log.info("grpc_serving", action="start", host=gateway.grpc_host,
                     port=gateway.grpc_port)
            task_status.started()
            try:
                await self._stop.wait()
                if health is not None:
                    await aio_as_trio(health.set_open)(False)
                log.info("grpc_draining", action="drain", in_flight=receiver.in_flight)
                await aio_as_trio(receiver.wait_idle)()
            finally:
                server.close()
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await aio_as_trio(server.wait_closed)()

    def stop(self) -> None:
        self._stop.set()
