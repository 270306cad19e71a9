"""The service runner: one root nursery holding the database pool, the NOTIFY listener, the
queue consumers, background loops and the health endpoint; graceful shutdown on request.

Shutdown: stop intake, give in-flight work `shutdown_timeout_seconds`, then cancel what
is left (a cancelled transaction rolls back, so its messages are simply processed again).
"""

from __future__ import annotations

import gc
import math
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, Protocol, TypeVar

import structlog
import trio
from psycopg.conninfo import make_conninfo

from tasker_shared.db.connect import resolve_database_url
from tasker_shared.db.database import Database, open_database
from tasker_shared.db.listen import RECONNECTED, Notification, NotificationListener
from tasker_shared.errors import Unavailable
from tasker_shared.queue import pgmq
from tasker_shared.queue.consumer import ConsumerCounters, QueueConsumer
from tasker_shared.queue.pgmq import queue_channel, queue_depths
from tasker_shared.queue.processor import Handle, Lock, TransactionalProcessor
from tasker_shared.runtime.circuit import CircuitBreaker, CircuitState
from tasker_shared.runtime.health import HealthApp, Routes, serve_health
from tasker_shared.runtime.logging import configure_logging
from tasker_shared.runtime.metrics import (
    CIRCUIT_STATE,
    POOL_CONNECTIONS,
    QUEUE_DEPTH,
    QUEUE_OLDEST_AGE,
)
from tasker_shared.runtime.ports import HEALTH_PORTS
from tasker_shared.runtime.settings import Settings
from tasker_shared.runtime.tracing import configure_tracing

log = structlog.get_logger("tasker.service")
M = TypeVar("M")

Background = Callable[[], Awaitable[None]]


class Drainable(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    def stop(self) -> None: ...

NotificationHandler = Callable[[Notification], None]

SATURATION_WARNING = 0.8  # channel fill that is reported (and logged) before it is full


def breaker_gauge(name: str, state: CircuitState) -> None:
    """`on_change` hook keeping `tasker_circuit_breaker_state` current (logs transitions)."""
    CIRCUIT_STATE.labels(name).set(state.gauge_value)
    log.info("circuit_breaker", action="transition", breaker=name, state=state.value)


def settle_heap() -> None:
    """Once a service has started: collect what starting it left behind, then move every
    object still alive (modules, templates, handlers, pools: about 80,000 to 120,000) out of
    the cyclic garbage collector's sight (`gc.freeze`). Each full collection then walks only
    what was made since; unfrozen, one under load walked them all and held the event loop
    for 70-210 ms (measured in every service during a W1 burst)."""
    gc.collect()
    gc.freeze()


class Runtime:
    """Everything a running service shares; built by `service_runtime`."""

    def __init__(
        self, *, name: str, settings: Settings, db: Database, url: str, health_server: bool = True
    ) -> None:
        self.name = name
        self.health_server = health_server  # False: the service serves /health/* itself
        self.settings = settings
        self.db = db
        self.url = url
        self.processor_uuid = uuid.uuid4()
        # health's worker_id: service.instance_id when set (the worker: its worker id)
        self.instance_id = settings.service.instance_id or f"{name}-{self.processor_uuid}"
        self.consumers: list[QueueConsumer] = []
        self.background: list[tuple[str, Background]] = []
        self.drainables: list[Drainable] = []
        self.channel_handlers: dict[str, list[NotificationHandler]] = {}
        # Told when the listener has reconnected: what was sent while it was away is lost.
        self.reconnect_handlers: list[Callable[[], None]] = []
        self.extra_details: list[Callable[[], dict[str, Any]]] = []
        self.routes: Routes = {}  # extra JSON routes of the health server
        self.started_at = time.time()
        self.state = "starting"
        self.db_ok = False
        self.health_port: int | None = None
        self._shutdown = trio.Event()
        self._listener: NotificationListener | None = None
        self.queue_breaker = CircuitBreaker.from_settings(
            "queue", settings.circuit_breakers, on_change=breaker_gauge)
        self.breakers: dict[str, CircuitBreaker] = {"queue": self.queue_breaker}
        if db.breaker is not None:
            self.breakers["database"] = db.breaker

    @property
    def accepting_work(self) -> bool:
        """False while starting, draining or stopped: the API must refuse new work."""
        return self.state == "normal"

    def check_accepting(self, *, retry_after: int = 5) -> None:
        """Raise `Unavailable` unless the service is in its normal operational state."""
        if not self.accepting_work:
            raise Unavailable(f"service {self.name} is {self.state}; not accepting new work",
                              retry_after=retry_after)

    def add_consumer(self, consumer: QueueConsumer) -> None:
        if consumer.breaker is None:
            consumer.breaker = self.queue_breaker
        self.consumers.append(consumer)
        self.on_notification(queue_channel(consumer.queue), lambda n: consumer.waker.on_notification(n.payload))
        self.on_reconnect(consumer.waker.request_poll)  # what was sent meanwhile: polled

    def consume(
        self,
        queue: str,
        *,
        decode: Callable[[Any], M],
        handle: Handle[M],
        handler_tasks: int | None = None,
        lock: Lock = pgmq.lock_messages,
    ) -> QueueConsumer:
        """Add a consumer whose batches are processed transactionally by `handle`; `lock`
        takes the batch's messages (a queue may lock what its handler needs with them)."""
        counters = ConsumerCounters()
        processor = TransactionalProcessor(
            db=self.db, queue=queue, decode=decode, handle=handle, counters=counters,
            max_reads=self.settings.queues.max_read_count, lock=lock,
        )
        consumer = QueueConsumer(queue=queue, process=processor, settings=self.settings.queues,
                                 counters=counters, handler_tasks=handler_tasks)
        self.add_consumer(consumer)
        return consumer

    def on_notification(self, channel: str, handler: NotificationHandler) -> None:
        self.channel_handlers.setdefault(channel, []).append(handler)

    def on_reconnect(self, handler: Callable[[], None]) -> None:
        """`handler()` after the NOTIFY listener reconnected (notifications sent while it
        was away were not heard; every queue consumer polls, see `add_consumer`)."""
        self.reconnect_handlers.append(handler)

    def add_drainable(self, component: Drainable) -> None:
        """A component holding in-flight work: stopped with the consumers, given the deadline."""
        self.drainables.append(component)

    def add_background(self, name: str, fn: Background) -> None:
        self.background.append((name, fn))

    def request_shutdown(self) -> None:
        self._shutdown.set()

    @property
    def listening(self) -> bool:
        """True while the NOTIFY listener is connected (never in polling mode)."""
        return self._listener is not None and self._listener.connected

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        listener_ok = self._listener is None or self._listener.connected
        consumers_ok = all(c.running for c in self.consumers)
        checks = {
            "database": "ok" if self.db_ok else "unreachable",
            "consumers": "ok" if consumers_ok else "not_running",
            "listener": "ok" if listener_ok else "disconnected",
            "state": self.state,
        }
        saturated = [s["channel"] for s in self.channel_saturation()
                     if s["used"] >= s["capacity"]]
        if saturated:
            checks["saturated_channels"] = ",".join(saturated)
        # A queue whose batches keep failing makes no progress, whatever the breakers say.
        failing = [c.queue for c in self.consumers if c.failing]
        if failing:
            checks["failing_queues"] = ",".join(failing)
        breaker_ok = all(b.state is not CircuitState.OPEN for b in self.breakers.values())
        checks["circuit_breakers"] = ",".join(
            f"{name}:{b.state.value}" for name, b in sorted(self.breakers.items()))
        ok = (self.db_ok and consumers_ok and listener_ok and breaker_ok and not saturated
              and not failing and self.state == "normal")
        return ok, checks

    def channel_saturation(self) -> list[dict[str, Any]]:
        """Fill of each consumer's intake channel (`warning` from 80%)."""
        out = []
        for consumer in self.consumers:
            stats = consumer.statistics()
            fill = stats.channel_used / stats.channel_capacity if stats.channel_capacity else 0.0
            out.append({"channel": stats.queue, "used": stats.channel_used,
                        "capacity": stats.channel_capacity,
                        "saturation_percent": round(fill * 100, 1),
                        "warning": fill >= SATURATION_WARNING})
        return out

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "database": asdict(self.db.statistics()),
            "consumers": [asdict(c.statistics()) for c in self.consumers],
            "operational_state": self.state,
            "circuit_breakers": {name: asdict(b.statistics())
                                 for name, b in sorted(self.breakers.items())},
            "channel_saturation": self.channel_saturation(),
        }
        if self._listener is not None:
            out["listener"] = {"received": self._listener.received,
                               "reconnects": self._listener.reconnects,
                               "connected": self._listener.connected}
        for extra in self.extra_details:
            out.update(extra())
        return out

    async def _check_database(self) -> None:
        while True:
            try:
                with trio.fail_after(5):
                    await self.db.fetchone("SELECT 1")
                self.db_ok = True
            except Exception as exc:
                if self.db_ok:
                    log.warning("database_unreachable", error=str(exc))
                self.db_ok = False
            stats = self.db.statistics()
            POOL_CONNECTIONS.labels("size").set(stats.pool_size)
            POOL_CONNECTIONS.labels("available").set(stats.pool_available)
            POOL_CONNECTIONS.labels("max").set(stats.pool_max)
            POOL_CONNECTIONS.labels("in_use").set(stats.pool_size - stats.pool_available)
            await trio.sleep(1.0)  # also drives the database breaker's probe while it is open

    async def _sample_queues(self) -> None:
        """Queue depth and oldest-message age gauges, every `metrics_sample_interval_seconds`."""
        while True:
            try:
                with trio.fail_after(10):
                    depths = await self.db.run(queue_depths)
            except Exception as exc:  # a sample is optional; keep sampling
                log.debug("queue_sample_failed", error=str(exc))
            else:
                for queue, (depth, _visible, age) in depths.items():
                    QUEUE_DEPTH.labels(queue).set(depth)
                    QUEUE_OLDEST_AGE.labels(queue).set(age)
                for consumer in self.consumers:
                    if consumer.queue in depths:
                        consumer.counters.queue_depth = depths[consumer.queue][0]
            await trio.sleep(self.settings.service.metrics_sample_interval_seconds)

    def _route(self, note: Notification) -> None:
        """A notification to the handlers of its channel (called by the listener)."""
        if note.channel == RECONNECTED:
            for resync in self.reconnect_handlers:
                resync()
            return
        for handler in self.channel_handlers.get(note.channel, ()):
            handler(note)

    async def _run_background(self, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                for name, fn in self.background:
                    nursery.start_soon(_guarded, name, fn)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until shutdown is requested (or the caller cancels)."""
        http_shutdown = trio.Event()
        async with trio.open_nursery() as outer:
            outer.start_soon(self._check_database)
            outer.start_soon(self._sample_queues)
            if self.channel_handlers and self.settings.queues.deployment_mode.listens:
                self._listener = NotificationListener(self.url, list(self.channel_handlers))
                await outer.start(self._listener.run, self._route)
            port = self.settings.service.health_port
            if port is None:
                port = HEALTH_PORTS.get(self.name, 0)
            if self.health_server:
                self.health_port = port
            if port and self.health_server:
                app = HealthApp(service=self.name, ready=self.readiness, details=self.details,
                                instance=lambda: self.instance_id, routes=self.routes)
                await outer.start(lambda task_status: serve_health(
                    app, host=self.settings.service.health_host, port=port,
                    shutdown=http_shutdown, task_status=task_status))
            async with trio.open_nursery() as inner:
                for consumer in self.consumers:
                    await inner.start(consumer.run)
                for component in self.drainables:
                    await inner.start(component.run)
                background_scope = trio.CancelScope()
                outer.start_soon(self._run_background, background_scope)
                self.db_ok = True
                self.state = "normal"
                settle_heap()
                log.info("service_started", action="start", service=self.name,
                         health_port=self.health_port, consumers=[c.queue for c in self.consumers])
                task_status.started()
                await self._shutdown.wait()
                self.state = "draining"
                log.info("service_draining", action="drain", service=self.name)
                for consumer in self.consumers:
                    consumer.stop()
                for component in self.drainables:
                    component.stop()
                inner.cancel_scope.deadline = (
                    trio.current_time() + self.settings.service.shutdown_timeout_seconds
                )
                background_scope.cancel()  # background loops are intake too
            self.state = "stopped"
            http_shutdown.set()
            log.info("service_stopped", action="stop", service=self.name)
            outer.cancel_scope.cancel()


async def _guarded(name: str, fn: Background) -> None:
    """Run a background loop forever, restarting it (after a pause) if it raises."""
    while True:
        try:
            await fn()
            return
        except Exception as exc:
            log.exception("background_failed", loop=name, error=str(exc))
            await trio.sleep(1.0)


@asynccontextmanager
async def service_runtime(
    name: str, settings: Settings, *, health_server: bool = True
) -> AsyncIterator[Runtime]:
    """Logging, database URL (embedded if unset) and an open pool for one service.

    `health_server=False` when the service answers /health/* and /metrics on its own port.
    """
    configure_logging(service=name, level=settings.service.log_level,
                      fmt=settings.service.log_format)
    configure_tracing(settings.telemetry, service=name)
    url = await trio.to_thread.run_sync(resolve_database_url, settings.database.url)
    # Every connection the service opens (pool, listener, others made from `Runtime.url`)
    # gives up a connection attempt after `connect_timeout_seconds` (libpq: whole seconds, >= 2).
    url = make_conninfo(url, connect_timeout=str(
        max(2, math.ceil(settings.database.connect_timeout_seconds))))
    breaker = CircuitBreaker.from_settings("database", settings.circuit_breakers, probed=True,
                                           on_change=breaker_gauge)
    async with open_database(
        url,
        min_size=settings.database.pool_min,
        max_size=settings.database.pool_max,
        statement_timeout_ms=settings.database.statement_timeout_ms,
        application_name=f"tasker-{name}",
        synchronous_commit=settings.database.synchronous_commit,
        connect_timeout_seconds=settings.database.connect_timeout_seconds,
        breaker=breaker,
    ) as db:
        yield Runtime(name=name, settings=settings, db=db, url=url, health_server=health_server)


async def run_until_signalled(
    serve: Callable[..., Awaitable[None]], settings: Settings
) -> None:
    """Run `serve(settings, runtime_hook=...)` and turn SIGTERM/SIGINT into a graceful stop."""
    holder: list[Runtime] = []
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def main() -> None:
                try:
                    await serve(settings, on_runtime=holder.append)
                finally:
                    done.set()
                    nursery.cancel_scope.cancel()

            nursery.start_soon(main)
            async for _ in signals:
                if holder:
                    holder[0].request_shutdown()
                else:
                    nursery.cancel_scope.cancel()
                break
            await done.wait()
