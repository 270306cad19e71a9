"""Readiness (database, consumers, channel saturation, circuit breakers) and the
operational state (starting → normal → draining → stopped) of a service runtime."""

from __future__ import annotations

import pytest
import trio

from tasker_shared.errors import Unavailable
from tasker_shared.queue.consumer import QueueConsumer
from tasker_shared.runtime.service import Runtime, service_runtime
from tests.operations.ops_support import until
from tests.support import service_settings


async def test_saturation_breakers_and_draining(db_url: str) -> None:
    settings = service_settings(db_url, queues={"channel_capacity": 1, "handler_tasks": 1,
                                                "poll_interval_ms": 10},
                                service={"shutdown_timeout_seconds": 30,
                                         "metrics_sample_interval_seconds": 0.01})
    release = trio.Event()
    started = trio.Event()

    async def process(ids: list[int] | None, limit: int) -> int:
        started.set()
        await release.wait()
        return 0

    async with service_runtime("ops-test", settings) as rt:
        consumer = QueueConsumer(queue="ops_test_queue", process=process,
                                 settings=settings.queues)
        rt.add_consumer(consumer)
        assert consumer.breaker is rt.queue_breaker
        with pytest.raises(Unavailable) as refused:
            rt.check_accepting()
        assert refused.value.retry_after == 5 and "starting" in str(refused.value)
        async with trio.open_nursery() as nursery:
            await nursery.start(rt.run)
            rt.check_accepting()  # normal: accepted
            await started.wait()
            await until(lambda: consumer.statistics().channel_used >= 1)  # poller fills it
            ok, checks = await rt.readiness()
            assert not ok and checks["saturated_channels"] == "ops_test_queue"
            [sat] = rt.details()["channel_saturation"]
            assert sat["warning"] and sat["saturation_percent"] >= 100

            db_breaker = rt.breakers["database"]
            for _ in range(settings.circuit_breakers.failure_threshold):
                db_breaker.record_failure()
            ok, checks = await rt.readiness()
            assert "database:open" in checks["circuit_breakers"]
            calls = rt.db.statistics().calls
            await trio.sleep(0.1)  # samplers and health probes fail fast meanwhile
            assert rt.db.statistics().calls == calls
            assert db_breaker.statistics().rejected > 0
            details = rt.details()["circuit_breakers"]
            assert details["database"]["state"] == "open"
            assert details["queue"]["state"] == "closed"
            db_breaker.reset()

            rt.request_shutdown()
            await until(lambda: rt.state == "draining")
            with pytest.raises(Unavailable, match="draining"):
                rt.check_accepting()
            ok, checks = await rt.readiness()
            assert not ok and checks["state"] == "draining"
            release.set()  # in-flight work finishes; the service stops
        assert rt.state == "stopped"
        assert not rt.accepting_work


async def test_ready_when_healthy(db_url: str) -> None:
    settings = service_settings(db_url)
    holder: list[Runtime] = []
    async with service_runtime("ops-ready", settings) as rt:
        holder.append(rt)
        async with trio.open_nursery() as nursery:
            await nursery.start(rt.run)
            ok, checks = await rt.readiness()
            assert ok, checks
            assert checks["circuit_breakers"] == "database:closed,queue:closed"
            rt.request_shutdown()
    assert holder[0].state == "stopped"
