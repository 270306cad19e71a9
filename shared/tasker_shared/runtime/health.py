"""Per-service HTTP endpoint: /health/live, /health/ready, /health/detailed and /metrics.

A bare ASGI application served by hypercorn on Trio: small enough for every service. The
bodies share one shape with the gateway's (`stamp`: status, timestamp, worker_id, service;
checks as tasker-core's HealthCheck objects: `check_bodies`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tasker_shared.runtime.metrics import REGISTRY

ReadinessCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
Details = Callable[[], dict[str, Any]]
# Extra JSON routes a service adds (path -> body), e.g. the worker's /metrics/events.
Routes = dict[str, Callable[[], dict[str, Any]]]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def stamp(status: str, *, service: str, instance: str) -> dict[str, Any]:
    """The fields every health body of every service starts with: tasker-core's worker health
    types' status, timestamp (RFC 3339, UTC) and worker_id (this process's id), plus the
    service's name."""
    return {"status": status, "timestamp": datetime.now(UTC).isoformat(),
            "worker_id": instance, "service": service}


def check_state(name: str, value: Any) -> str:
    """healthy / degraded / unhealthy for one of `Runtime.readiness`'s raw checks."""
    if name == "circuit_breakers":
        states = {part.rpartition(":")[2] for part in str(value).split(",") if part}
        if "open" in states:
            return "unhealthy"
        return "degraded" if "half_open" in states else "healthy"
    return "healthy" if value in ("ok", "normal") else "unhealthy"


def check_bodies(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Raw readiness checks as tasker-core's HealthCheck objects {status, message,
    duration_ms}, the shape the gateway's checks have too."""
    return {name: {"status": check_state(name, value), "message": str(value),
                   "duration_ms": 0} for name, value in raw.items()}


class HealthApp:
    """ASGI app answering the health and metrics routes."""

    def __init__(self, *, service: str, ready: ReadinessCheck, details: Details,
                 instance: Callable[[], str] | None = None,
                 routes: Routes | None = None) -> None:
        self.service = service
        self.routes = routes if routes is not None else {}
        self.ready = ready
        self.details = details
        self.instance = instance or (lambda: service)

    def _stamp(self, status: str) -> dict[str, Any]:
        return stamp(status, service=self.service, instance=self.instance())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":  # tasker-core's clients require "healthy" here
            await _json(send, 200, self._stamp("healthy"))
        elif path == "/health/live":
            await _json(send, 200, self._stamp("alive"))
        elif path == "/health/ready":
            ok, checks = await self.ready()
            await _json(send, 200 if ok else 503, {
                **self._stamp("ready" if ok else "not_ready"), "ready": ok,
                "checks": check_bodies(checks)})
        elif path == "/health/detailed":
            ok, checks = await self.ready()
            await _json(send, 200 if ok else 503, {
                **self._stamp("healthy" if ok else "degraded"),
                "checks": check_bodies(checks), "details": self.details()})
        elif path == "/metrics":
            body = generate_latest(REGISTRY)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())]})
            await send({"type": "http.response.body", "body": body})
        elif path in self.routes:
            await _json(send, 200, self.routes[path]())
        else:
            await _json(send, 404, {"error": {"code": "not_found", "message": path}})


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body, default=str).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


async def serve_health(
    app: HealthApp,
    *,
    host: str,
    port: int,
    shutdown: trio.Event,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until `shutdown` is set."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]
