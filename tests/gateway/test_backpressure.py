"""Backpressure (SPEC 8.5): creation is refused with 503 + Retry-After / RESOURCE_EXHAUSTED +
retry-after while a queue is deep or the database is down, from cached state; it clears."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from grpclib.const import Status

from tasker_gateway.backpressure import DATABASE_RETRY_AFTER, BackpressureMonitor, tier
from tasker_gateway.errors import Backpressure
from tasker_shared.runtime.circuit import CircuitBreaker
from tasker_shared.runtime.settings import GatewaySettings
from tests.gateway.conftest import Gateway, grpc_client, running_gateway
from tests.gateway.helpers import create_with_trailers, linear_body, linear_request, until

QUEUE = "orchestration_task_finalizations"  # nobody consumes it in these tests


def fill(gw: Gateway, count: int) -> None:
    gw.sql("SELECT tasker.send_v1(%s, '{}'::jsonb) FROM generate_series(1, %s)", (QUEUE, count))


async def settle(gw: Gateway, active: bool) -> None:
    async def reached() -> bool:
        return gw.ctx.backpressure.status.active is active

    await until(reached, seconds=5)


async def test_backpressure_triggers_and_clears(db_url: str) -> None:
    async with running_gateway(db_url, gateway={
            "queue_depth_critical": 3, "queue_depth_overflow": 6,
            "backpressure_refresh_seconds": 0.05}) as gw, gw.http() as http, \
            grpc_client(gw.grpc_port) as rpc:
        assert (await http.post("/v1/tasks", json=linear_body(1))).status_code == 201
        fill(gw, 3)
        await settle(gw, True)
        refused = await http.post("/v1/tasks", json=linear_body(2))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "30"
        assert refused.json()["error"]["code"] == "backpressure"
        assert QUEUE in refused.json()["error"]["message"]
        status, message, trailers = await create_with_trailers(rpc, linear_request(2))
        assert status is Status.RESOURCE_EXHAUSTED and "retry after 30s" in message
        assert trailers["retry-after"] == "30" and trailers["x-request-id"]
        assert (await http.get("/v1/tasks")).status_code == 200  # reads are not limited
        detailed = (await http.get("/health/detailed")).json()
        assert detailed["status"] == "degraded" and detailed["backpressure"]["active"]
        assert detailed["backpressure"]["queue_depth_tier"] == "critical"

        fill(gw, 3)

        async def overflowing() -> bool:
            return gw.ctx.backpressure.status.retry_after_seconds == 60

        await until(overflowing, seconds=5)
        overflow = await http.post("/v1/tasks", json=linear_body(3))
        assert overflow.status_code == 503 and overflow.headers["retry-after"] == "60"

        gw.sql("SELECT pgmq.purge_queue(%s)", (QUEUE,))
        await settle(gw, False)
        assert (await http.post("/v1/tasks", json=linear_body(4))).status_code == 201
        status, _, _ = await create_with_trailers(rpc, linear_request(5))
        assert status is Status.OK
        assert gw.ctx.backpressure.rejections == 3


class _FailingDb:
    def __init__(self) -> None:
        self.breaker: CircuitBreaker | None = None

    async def run(self, *args: object) -> Any:
        raise OSError("connection refused")


async def test_database_trouble_counts_as_backpressure() -> None:
    db = _FailingDb()
    monitor = BackpressureMonitor(db=db,  # type: ignore[arg-type]
                                  settings=GatewaySettings(backpressure_refresh_seconds=0.01))
    for _ in range(2):
        await monitor.refresh()
    assert not monitor.status.active
    await monitor.refresh()
    assert monitor.status.active and monitor.status.retry_after_seconds == 5
    assert monitor.status.reason == "database unavailable"
    monitor.record_depths({"q": (1, 1, 0.5)})
    assert not monitor.status.active

    db.breaker = CircuitBreaker("database", failure_threshold=1)
    db.breaker.record_failure()
    assert monitor.breaker_open()
    with pytest.raises(Backpressure) as info:
        monitor.check()
    assert info.value.retry_after == DATABASE_RETRY_AFTER

    with trio.move_on_after(0.05):
        await monitor.run()
    assert monitor.consecutive_failures >= 1


async def test_creation_accepted_as_soon_as_the_database_breaker_closes() -> None:
    db = _FailingDb()
    db.breaker = CircuitBreaker("database", failure_threshold=1)
    db.breaker.record_failure()
    monitor = BackpressureMonitor(db=db,  # type: ignore[arg-type]
                                  settings=GatewaySettings(backpressure_refresh_seconds=60))
    await monitor.refresh()  # rejected by the open breaker: the cached verdict refuses
    assert monitor.status.active and not monitor.status.database_ok
    with pytest.raises(Backpressure):
        monitor.check()
    db.breaker.reset()  # its probe found the database answering again
    monitor.check()  # accepted at once, not one refresh (or a 30 s Retry-After) later
    assert not monitor.status.active and monitor.rejections == 1


def test_tiers() -> None:
    assert tier(0, critical=10, overflow=20) == "normal"
    assert tier(8, critical=10, overflow=20) == "warning"
    assert tier(10, critical=10, overflow=20) == "critical"
    assert tier(25, critical=10, overflow=20) == "overflow"
