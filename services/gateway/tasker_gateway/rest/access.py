"""ASGI middleware around the REST app: a SERVER span per request continuing the caller's
`traceparent` (current while the request is handled, so queue messages sent for it carry
it on), and, once the response is complete (a whole event stream included), the API
metrics and one access log line. The app notes what it learns while handling the request
(matched route, operation, principal, request id) in the scope entry `ACCESS`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from tasker_gateway.metrics import answered
from tasker_shared.runtime.tracing import message_span

ACCESS = "tasker.access"

App = Callable[[Any, Any, Any], Awaitable[None]]  # an ASGI application


class AccessMiddleware:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method", "GET"))
        headers = {key.decode("latin-1").lower(): value.decode("latin-1")
                   for key, value in scope.get("headers", ())}
        note: dict[str, Any] = {}
        scope[ACCESS] = note
        status = 500  # until the response starts: a failure before it is the server's

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with message_span(method, headers, kind=SpanKind.SERVER, attributes={
                "http.request.method": method, "url.path": str(scope.get("path", ""))}) as span:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                route = note.get("route") or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR, f"HTTP {status}")
                answered(transport="rest", method=method, route=route,
                         operation=note.get("operation") or "unmatched", status=str(status),
                         seconds=time.perf_counter() - started,
                         principal=note.get("principal"), request_id=note.get("request_id"))
