"""Serves the REST application with hypercorn on Trio, as a drainable Runtime component."""

from __future__ import annotations

from functools import partial

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
        self.binds: list[str] = []
        gateway = ctx.settings.gateway
        self.config = Config()
        self.config.bind = [f"{gateway.rest_host}:{gateway.rest_port}"]
        self.config.accesslog = None
        self.config.errorlog = None
        self.config.graceful_timeout = ctx.settings.service.shutdown_timeout_seconds
        self.config.keep_alive_timeout = 75

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.binds = await nursery.start(partial(
                serve, self.app, self.config, shutdown_trigger=self._stop.wait))
            task_status.started()

    def stop(self) -> None:
        self._stop.set()
