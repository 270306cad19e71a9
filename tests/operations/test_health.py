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
                                         "metrics_sample_interval_seconds": 0.01},
                                circuit_breakers={"probe_interval_seconds": 60})
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


async def test_ready_reflects_a_queue_that_cannot_make_progress(db_url: str) -> None:
    settings = service_settings(db_url, queues={"poll_interval_ms": 10, "handler_tasks": 1})
    broken = True

    async def process(ids: list[int] | None, limit: int) -> int:
        if broken:
            raise ValueError("every batch fails the same way")
        return 0

    async with service_runtime("ops-failing", settings) as rt:
        consumer = QueueConsumer(queue="ops_failing_queue", process=process,
                                 settings=settings.queues)
        rt.add_consumer(consumer)
        async with trio.open_nursery() as nursery:
            await nursery.start(rt.run)
            await until(lambda: consumer.failing)
            ok, checks = await rt.readiness()
            # the database breaker is closed and the consumer runs, yet not ready
            assert not ok and checks["failing_queues"] == "ops_failing_queue"
            assert "database:closed" in checks["circuit_breakers"]
            [stats] = rt.details()["consumers"]
            assert stats["consecutive_failures"] >= 3
            assert stats["last_error"] == "ValueError: every batch fails the same way"
            broken = False
            await until(lambda: not consumer.failing)
            rt.queue_breaker.reset()  # opened by the failures; its timeout is 30 s
            ok, checks = await rt.readiness()
            assert ok, checks
            rt.request_shutdown()


async def test_database_breaker_closes_by_probe(db_url: str) -> None:
    settings = service_settings(db_url, circuit_breakers={"probe_interval_seconds": 0.05})
    async with service_runtime("ops-probe", settings) as rt, trio.open_nursery() as nursery:
        await nursery.start(rt.run)
        breaker = rt.breakers["database"]
        for _ in range(settings.circuit_breakers.failure_threshold):
            breaker.record_failure()
        ok, checks = await rt.readiness()
        assert not ok and "database:open" in checks["circuit_breakers"]
        # The database answers: the runtime's own checks probe it and close the breaker
        # long before the 30 s timeout.
        await until(lambda: breaker.state.value == "closed", limit=10)
        assert breaker.statistics().probes >= 1
        rt.request_shutdown()
