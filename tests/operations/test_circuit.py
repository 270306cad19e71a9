"""Circuit breakers (SPEC §8.4): the state machine with an injected clock, then wired
around `Database.run` (a real connection killed server side) and the queue consumer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from tasker_shared.db.database import Conn, Database, is_outage
from tasker_shared.errors import ConflictError, StoreError, StoreTimeout, StoreUnavailable
from tasker_shared.queue.consumer import QueueConsumer
from tasker_shared.runtime.circuit import CircuitBreaker, CircuitState
from tasker_shared.runtime.metrics import REGISTRY
from tasker_shared.runtime.service import breaker_gauge
from tasker_shared.runtime.settings import CircuitBreakerSettings, DeploymentMode, QueueSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Callable[[], float], **kw: int | float) -> CircuitBreaker:
    changes: list[tuple[str, CircuitState]] = []
    breaker = CircuitBreaker("test", clock=clock, on_change=lambda n, s: changes.append((n, s)),
                             **kw)  # type: ignore[arg-type]
    breaker.changes = changes  # type: ignore[attr-defined]
    return breaker


def test_closed_to_open_after_consecutive_failures() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=3, timeout_seconds=30, success_threshold=2)
    assert b.state is CircuitState.CLOSED and b.allow()
    b.record_failure()
    b.record_failure()
    b.record_success()  # a success resets the count
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.allow() and not b.allow()
    stats = b.statistics()
    assert (stats.state, stats.rejected, stats.times_opened) == ("open", 2, 1)
    assert stats.retry_after_seconds == 30.0
    assert b.changes == [("test", CircuitState.CLOSED), ("test", CircuitState.OPEN)]  # type: ignore[attr-defined]


def test_open_to_half_open_to_closed() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, timeout_seconds=30, success_threshold=2)
    b.record_failure()
    clock.now += 29.9
    assert not b.allow()
    assert b.retry_after() == pytest.approx(0.1)
    clock.now += 0.1
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow() and b.retry_after() == 0.0
    b.record_success()
    assert b.state is CircuitState.HALF_OPEN
    b.record_success()
    assert b.state is CircuitState.CLOSED
    assert [s for _, s in b.changes] == [  # type: ignore[attr-defined]
        CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_failure_in_half_open_reopens() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=2, timeout_seconds=5, success_threshold=3)
    b.record_failure()
    b.record_failure()
    clock.now += 5
    b.record_success()
    assert b.state is CircuitState.HALF_OPEN
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert b.retry_after() == 5.0  # the timeout starts again
    assert b.statistics().times_opened == 2
    b.reset()
    assert b.state is CircuitState.CLOSED and b.allow()


def test_disabled_breaker_always_allows_and_settings_are_used() -> None:
    settings = CircuitBreakerSettings(enabled=False, failure_threshold=1)
    b = CircuitBreaker.from_settings("off", settings, clock=Clock())
    b.record_failure()
    assert b.state is CircuitState.OPEN and b.allow()  # tracked, never enforced
    defaults = CircuitBreaker.from_settings("db", CircuitBreakerSettings())
    assert (defaults.failure_threshold, defaults.timeout_seconds,
            defaults.success_threshold) == (5, 30.0, 2)
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker("bad", failure_threshold=0)


def test_gauge_follows_state() -> None:
    clock = Clock()
    b = CircuitBreaker("gauge_test", failure_threshold=1, timeout_seconds=1, clock=clock,
                       on_change=breaker_gauge)

    def value() -> float | None:
        return REGISTRY.get_sample_value("tasker_circuit_breaker_state", {"name": "gauge_test"})

    assert value() == 0
    b.record_failure()
    assert value() == 2
    clock.now += 1
    assert b.state is CircuitState.HALF_OPEN and value() == 1


def test_outage_classification() -> None:
    assert is_outage(StoreUnavailable("x", retryable=True))
    assert is_outage(StoreTimeout("x", retryable=True))
    assert is_outage(StoreError("x", sqlstate="53300"))
    assert not is_outage(StoreError("x", sqlstate="42P01"))
    assert not is_outage(ConflictError("dup"))
    assert not is_outage(ValueError("bug"))


def _kill_own_connection(conn: Conn) -> None:
    conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def _select_one(conn: Conn) -> int:
    row = conn.execute("SELECT 1 AS one").fetchone()
    assert row is not None
    return int(row["one"])


def _duplicate(conn: Conn) -> None:
    conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1), (1)")


async def test_database_breaker_fails_fast_when_open(db: Database) -> None:
    clock = Clock()
    db.breaker = CircuitBreaker("database", failure_threshold=2, timeout_seconds=10,
                                success_threshold=2, clock=clock)
    with pytest.raises(ConflictError):  # a logic error is not an outage
        await db.run(_duplicate)
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await db.run(_kill_own_connection)
    assert db.breaker.state is CircuitState.OPEN
    calls = db.statistics().calls
    ran: list[int] = []
    with pytest.raises(StoreUnavailable, match="circuit breaker is open"):
        await db.run(lambda conn: ran.append(1))
    assert ran == [] and db.statistics().calls == calls  # never reached the pool
    clock.now += 10
    assert await db.run(_select_one) == 1  # half-open trial
    assert db.breaker.state is CircuitState.HALF_OPEN
    assert await db.run(_select_one) == 1
    assert db.breaker.state is CircuitState.CLOSED


async def test_queue_breaker_pauses_processing(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []
    healthy = trio.Event()

    async def process(ids: list[int] | None, limit: int) -> int:
        attempts.append(trio.current_time())
        if not healthy.is_set():
            raise RuntimeError("queue table unreachable")
        return 0

    breaker = CircuitBreaker("queue", failure_threshold=3, timeout_seconds=20,
                             success_threshold=1, clock=trio.current_time)
    settings = QueueSettings(poll_interval_ms=1000, handler_tasks=1)
    consumer = QueueConsumer(queue="q", process=process, settings=settings, breaker=breaker)
    async with trio.open_nursery() as nursery:
        await nursery.start(consumer.run)
        await trio.sleep(5)
        assert len(attempts) == 3 and breaker.state is CircuitState.OPEN
        await trio.sleep(10)
        assert len(attempts) == 3  # open: nothing is attempted
        assert consumer.statistics().failed == 3
        healthy.set()
        await trio.sleep(10)
        assert breaker.state is CircuitState.CLOSED  # half-open trial succeeded
        assert attempts[3] >= attempts[2] + 20
        consumer.stop()


def test_probe_closes_an_open_breaker_at_once() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=2, timeout_seconds=30, success_threshold=2,
                 probe_interval_seconds=0.5)
    assert not b.begin_probe()  # closed: nothing to probe
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.begin_probe()  # the first probe waits one interval
    assert b.retry_after() == pytest.approx(0.5)  # not the 30 s timeout
    clock.now += 0.5
    assert b.begin_probe()
    assert not b.begin_probe()  # one probe at a time
    b.end_probe(False)  # the database is still down
    assert b.state is CircuitState.OPEN and not b.allow()
    assert not b.begin_probe() and b.retry_after() == pytest.approx(0.5)
    clock.now += 0.5
    assert b.begin_probe()
    b.end_probe(True)  # it answered: closed now, not 30 s (or two trial calls) later
    assert b.state is CircuitState.CLOSED and b.allow()
    stats = b.statistics()
    assert (stats.probes, stats.probes_failed, stats.times_opened) == (2, 1, 1)
    assert [s for _, s in b.changes] == [  # type: ignore[attr-defined]
        CircuitState.CLOSED, CircuitState.OPEN, CircuitState.CLOSED]
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.OPEN and not b.begin_probe()  # the interval starts again


def test_probing_needs_an_interval_and_an_enabled_breaker() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, timeout_seconds=30)
    b.record_failure()
    clock.now += 10
    assert not b.begin_probe() and b.retry_after() == pytest.approx(20)
    off = CircuitBreaker("off", failure_threshold=1, probe_interval_seconds=0.5, enabled=False,
                         clock=clock)
    off.record_failure()
    clock.now += 1
    assert not off.begin_probe()
    settings = CircuitBreakerSettings(probe_interval_seconds=0.25)
    assert CircuitBreaker.from_settings("db", settings, probed=True).probe_interval_seconds == 0.25
    assert CircuitBreaker.from_settings("queue", settings).probe_interval_seconds == 0
    with pytest.raises(ValueError, match="probe interval"):
        CircuitBreaker("bad", probe_interval_seconds=-1)


async def test_database_breaker_rejection_is_not_a_queue_failure(
        autojump_clock: trio.testing.MockClock) -> None:
    db_breaker = CircuitBreaker("database", failure_threshold=1, timeout_seconds=30,
                                clock=trio.current_time)
    db_breaker.record_failure()
    queue_breaker = CircuitBreaker("queue", failure_threshold=3, timeout_seconds=30,
                                   clock=trio.current_time)
    attempts: list[float] = []

    async def process(ids: list[int] | None, limit: int) -> int:
        attempts.append(trio.current_time())
        if not db_breaker.allow():
            raise StoreUnavailable("database circuit breaker is open; retry in 0.5s",
                                   retryable=True)
        return 0

    settings = QueueSettings(poll_interval_ms=1000, handler_tasks=1)
    consumer = QueueConsumer(queue="q", process=process, settings=settings,
                             breaker=queue_breaker)
    async with trio.open_nursery() as nursery:
        await nursery.start(consumer.run)
        await trio.sleep(10)
        # Ten rejected batches: the queue breaker never opened, so the queue is looked at
        # as soon as the database is back (not after a queue breaker cycle of its own).
        assert len(attempts) >= 5 and queue_breaker.state is CircuitState.CLOSED
        assert queue_breaker.total_failures == 0 and consumer.statistics().failed == 0
        assert consumer.failing and consumer.statistics().consecutive_failures == len(attempts)
        db_breaker.reset()
        count = len(attempts)
        await trio.sleep(1.5)
        assert len(attempts) > count and not consumer.failing
        assert consumer.statistics().last_error is not None
        consumer.stop()


async def test_failed_batch_is_looked_at_again_without_a_poller(
        autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []

    async def process(ids: list[int] | None, limit: int) -> int:
        attempts.append(trio.current_time())
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return 0

    settings = QueueSettings(poll_interval_ms=500, handler_tasks=1,
                             deployment_mode=DeploymentMode.EVENT_DRIVEN)
    consumer = QueueConsumer(queue="q", process=process, settings=settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(consumer.run)
        await trio.sleep(60)
        # event_driven: no poller and no notification, yet the failed pass ran again
        assert len(attempts) == 2 and attempts[1] - attempts[0] == pytest.approx(0.5)
        assert consumer.statistics().failed == 1 and not consumer.failing
        consumer.stop()
