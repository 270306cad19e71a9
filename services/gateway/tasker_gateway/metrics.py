"""Gateway metrics (on the process-wide registry served at /metrics)."""

from __future__ import annotations

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


def observe(transport: str, operation: str, status: str, seconds: float) -> None:
    API_REQUESTS.labels(transport, operation, status).inc()
    API_LATENCY.labels(transport, operation).observe(seconds)
