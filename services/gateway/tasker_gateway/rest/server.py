"""Serves the REST application with hypercorn on Trio, as a drainable Runtime component."""

from __future__ import annotations

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tasker_gateway.context import GatewayContext
from tasker_gateway.rest.app import create_app


class RestServer:
    """`run` serves until `stop`; in-flight requests finish (hypercorn's graceful shutdown)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.app = create_app(ctx)
        self._stop = trio.Event()
        gateway = ctx.settings.gateway
        self.config = Config()
        self.config.bind = [f"{gateway.rest_host}:{gateway.rest_port}"]
        self.config.accesslog = None
        self.config.errorlog = None
        self.config.graceful_timeout = ctx.settings.service.shutdown_timeout_seconds
        self.config.keep_alive_timeout = 75

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await serve(self.app, self.config, shutdown_trigger=self._stop.wait,  # type: ignore[arg-type]
                    task_status=task_status)

    def stop(self) -> None:
        self._stop.set()
