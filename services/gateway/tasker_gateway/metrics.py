"""Gateway metrics (on the process-wide registry served at /metrics) and the access log:
`answered` records every API call once, REST and gRPC alike."""

from __future__ import annotations

import structlog
from prometheus_client import Counter, Histogram

from tasker_shared.runtime.metrics import REGISTRY

API_REQUESTS = Counter(
    "tasker_gateway_requests_total", "API calls answered, by transport, operation and status",
    ["transport", "operation", "status"], registry=REGISTRY,
)
API_LATENCY = Histogram(
    "tasker_gateway_request_duration_seconds", "Time to answer an API call",
    ["transport", "operation"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

access_log = structlog.get_logger("tasker.gateway.access")


def observe(transport: str, operation: str, status: str, seconds: float) -> None:
    API_REQUESTS.labels(transport, operation, status).inc()
    API_LATENCY.labels(transport, operation).observe(seconds)


def answered(*, transport: str, method: str, route: str, operation: str, status: str,
             seconds: float, principal: str | None, request_id: str | None) -> None:
    """Metrics plus one access log line (`request`) for a call the gateway has answered:
    `method` is the HTTP method (or `grpc`), `route` the matched rule (or the RPC's path),
    `status` the HTTP status (or gRPC status name), `principal` the authenticated caller."""
    observe(transport, operation, status, seconds)
    access_log.info("request", action="access", transport=transport, method=method,
                    route=route, status=status, duration_ms=round(seconds * 1000, 3),
                    principal=principal, request_id=request_id)
