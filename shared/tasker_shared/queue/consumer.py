"""The queue consumer every service uses: wake-ups in, bounded channel, N handler tasks.

A `process(ids, limit)` coroutine does the work for a batch of message ids (or, when `ids`
is None, for whatever is visible) and returns how many messages it took. Intake stops on
`stop()`; handler tasks finish the batch they hold and exit.

A batch that fails because the database is unreachable (an outage, or the database
breaker's own fail-fast rejection) is the database breaker's business: it is not recorded in
the queue breaker, or the two breakers would open each other in turn. Every failed batch
(of either kind) is looked at again after a pause, and `failing` reports a consumer whose
batches keep failing: it cannot make progress (readiness says so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
import trio

from tasker_shared.db.database import is_outage
from tasker_shared.queue.waker import Waker
from tasker_shared.runtime.metrics import IN_FLIGHT
from tasker_shared.runtime.settings import QueueSettings

if TYPE_CHECKING:
    from tasker_shared.runtime.circuit import CircuitBreaker

log = structlog.get_logger("tasker.consumer")

Process = Callable[[list[int] | None, int], Awaitable[int]]

FAILING_AFTER = 3  # consecutive failed batches after which a consumer counts as failing


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsumerStatistics:
    queue: str
    received: int
    processed: int
    failed: int
    set_aside: int
    in_flight: int
    last_poll_at: float | None
    queue_depth: int | None
    consecutive_failures: int
    last_error: str | None
    running: bool
    channel_used: int
    channel_capacity: int


class ConsumerCounters:
    """Mutable counters a processor updates; the consumer reports them."""

    def __init__(self) -> None:
        self.received = 0
        self.processed = 0
        self.failed = 0
        self.set_aside = 0
        self.queue_depth: int | None = None


class QueueConsumer:
    """Consumes one queue; see the module docstring."""

    def __init__(
        self,
        *,
        queue: str,
        process: Process,
        settings: QueueSettings,
        counters: ConsumerCounters | None = None,
        handler_tasks: int | None = None,
        breaker: CircuitBreaker | None = None,
        notified_ids: bool = False,
    ) -> None:
        self.queue = queue
        self.breaker = breaker  # while open, batches wait and are re-polled later
        self._process = process
        self.settings = settings
        self.counters = counters or ConsumerCounters()
        self.handler_tasks = handler_tasks or settings.handler_tasks
        # Pass a wake-up that only notifications caused its message ids (else None), for a
        # `process` that can tell messages it already holds (the worker's claims).
        self.notified_ids = notified_ids
        self.waker = Waker(
            poll_interval_seconds=settings.poll_interval_ms / 1000.0,
            polls=settings.deployment_mode.polls,
        )
        self._stopping = False
        self._running = False
        self._in_flight = 0
        self._capacity = settings.channel_capacity
        self._used = 0
        self._intake_scope: trio.CancelScope | None = None
        self.consecutive_failures = 0  # batches failed in a row (any cause)
        self.last_error: str | None = None

    def stop(self) -> None:
        """Stop intake; handler tasks finish what they hold."""
        self._stopping = True
        if self._intake_scope is not None:
            self._intake_scope.cancel()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def failing(self) -> bool:
        """True while its batches keep failing: the queue makes no progress."""
        return self.consecutive_failures >= FAILING_AFTER

    def statistics(self) -> ConsumerStatistics:
        c = self.counters
        return ConsumerStatistics(
            queue=self.queue,
            received=c.received,
            processed=c.processed,
            failed=c.failed,
            set_aside=c.set_aside,
            in_flight=self._in_flight,
            last_poll_at=self.waker.last_poll_at,
            queue_depth=c.queue_depth,
            consecutive_failures=self.consecutive_failures,
            last_error=self.last_error,
            running=self._running,
            channel_used=self._used,
            channel_capacity=self._capacity,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, recv = trio.open_memory_channel[list[int] | None](self._capacity)
        self._running = True
        try:
            async with trio.open_nursery() as handlers:
                async with recv:
                    for _ in range(self.handler_tasks):
                        handlers.start_soon(self._handle_loop, recv.clone())
                async with trio.open_nursery() as timers:
                    timers.start_soon(self.waker.run_timers)
                    if self.waker.polls:
                        timers.start_soon(self.waker.run_poller)
                    task_status.started()
                    await self._intake(send)
                    timers.cancel_scope.cancel()
                # Intake is closed: handlers finish the batch they hold, then exit.
        finally:
            self._running = False

    async def _intake(self, send: trio.MemorySendChannel[list[int] | None]) -> None:
        batch = self.settings.batch_size
        async with send:
            with trio.CancelScope() as scope:
                self._intake_scope = scope
                if self._stopping:
                    return
                while True:
                    # A notification says "work is waiting", not "take exactly this message":
                    # every pass takes the oldest visible messages (SKIP LOCKED), so a backlog
                    # drains at full batch size. As many passes run at once as the notified
                    # messages would fill, up to the number of handler tasks.
                    wake = await self.waker.next()
                    passes = -(-len(wake.ids) // batch) if wake.ids else int(wake.poll)
                    item = wake.ids if self.notified_ids and not wake.poll else None
                    for _ in range(min(passes, self.handler_tasks)):
                        await self._put(send, item)

    async def _put(self, send: trio.MemorySendChannel[list[int] | None], item: list[int] | None) -> None:
        self._used += 1
        try:
            await send.send(item)
        except BaseException:
            self._used -= 1  # cancelled while the channel was full (stop)
            raise

    async def _handle_loop(self, recv: trio.MemoryReceiveChannel[list[int] | None]) -> None:
        gauge = IN_FLIGHT.labels(self.queue)
        async with recv:
            async for item in recv:
                self._used -= 1
                if self._stopping:
                    continue
                breaker = self.breaker
                if breaker is not None and not breaker.allow():
                    # Nothing is lost: the messages stay in the queue; look again later.
                    await trio.sleep(min(max(breaker.retry_after(), 0.05),
                                         self.settings.poll_interval_ms / 1000.0))
                    self.waker.request_poll()
                    continue
                self._in_flight += 1
                gauge.inc()
                try:
                    taken = await self._process(item, self.settings.batch_size)
                except Exception as exc:
                    taken = 0
                    self._failed(exc)
                else:
                    self.consecutive_failures = 0
                    if breaker is not None:
                        breaker.record_success()
                finally:
                    self._in_flight -= 1
                    gauge.dec()
                if self.consecutive_failures:
                    # Look again after a pause: without a poller nothing else would.
                    await trio.sleep(min(1.0, self.settings.poll_interval_ms / 1000.0))
                    if not self.waker.polls:
                        self.waker.request_poll()
                elif item is None and taken >= self.settings.batch_size:
                    self.waker.request_poll()  # more may be waiting: keep draining

    def _failed(self, exc: Exception) -> None:
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if is_outage(exc):
            # The database breaker counts these (its own rejections included); logged once.
            if self.consecutive_failures == 1:
                log.warning("consumer_database_unavailable", queue=self.queue, error=str(exc))
            return
        self.counters.failed += 1
        if self.breaker is not None:
            self.breaker.record_failure()
        log.exception("consumer_process_failed", queue=self.queue, error=str(exc))
