"""The per-service health endpoint answers tasker-core's worker health shapes: `/health`
is `healthy` with an RFC 3339 timestamp and the worker's id (tasker-core's clients and e2e
harness require them); `/health/live` is `alive`; ready/detailed carry Tasker's checks as
tasker-core's HealthCheck objects, the shape the gateway's checks have."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tasker_shared.runtime.health import HealthApp


async def _get(app: HealthApp, path: str) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET"}, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {"database": "ok", "circuit_breakers": "database:half_open,queue:closed"}


def _app() -> HealthApp:
    return HealthApp(service="worker", ready=_ready, details=lambda: {"x": 1},
                     instance=lambda: "host-42")


async def test_health_is_healthy_with_timestamp_and_worker_id() -> None:
    status, body = await _get(_app(), "/health")
    assert status == 200 and body["status"] == "healthy" and body["worker_id"] == "host-42"
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None  # DateTime<Utc>
    status, live = await _get(_app(), "/health/live")
    assert status == 200 and live["status"] == "alive" and live["worker_id"] == "host-42"


async def test_ready_and_detailed_keep_their_checks() -> None:
    status, ready = await _get(_app(), "/health/ready")
    assert (status, ready["status"], ready["ready"]) == (200, "ready", True)
    assert ready["checks"] == {
        "database": {"status": "healthy", "message": "ok", "duration_ms": 0},
        "circuit_breakers": {"status": "degraded", "duration_ms": 0,
                             "message": "database:half_open,queue:closed"}}
    assert ready["worker_id"] == "host-42" and "timestamp" in ready
    status, detailed = await _get(_app(), "/health/detailed")
    assert (status, detailed["status"], detailed["details"]) == (200, "healthy", {"x": 1})


async def test_every_service_answers_the_same_shape() -> None:
    app = HealthApp(service="finalizer", ready=_ready, details=dict)
    _, body = await _get(app, "/health")
    assert set(body) == {"status", "timestamp", "worker_id", "service"}
    assert body["worker_id"] == "finalizer"
