"""Default HTTP ports of each service's health/metrics endpoint (and the gateway's APIs)."""

from __future__ import annotations

SERVICE_NAMES: tuple[str, ...] = ("ingestion", "results", "finalizer", "gateway", "worker")

HEALTH_PORTS: dict[str, int] = {
    "gateway": 8080,  # the gateway serves /health/* and /metrics on its REST port
    "ingestion": 8091,
    "results": 8092,
    "finalizer": 8093,
    "worker": 8094,
}

GATEWAY_GRPC_PORT = 9190

HEALTH_LIVE_PATH = "/health/live"
HEALTH_READY_PATH = "/health/ready"
METRICS_PATH = "/metrics"
