"""Claims steps as capacity allows (fairly across namespace queues) and hands them to a fixed
set of executor tasks; keeps the claimed messages invisible (visibility timeout extended)
while their handlers run; records finished steps in batches, all of them before it stops."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
import trio

from tasker_shared.db.database import Database, is_outage
from tasker_shared.domain.limits import DEFAULT_MAX_BYTES
from tasker_shared.queue.consumer import QueueConsumer
from tasker_shared.runtime.metrics import MESSAGES_CONSUMED
from tasker_shared.runtime.settings import QueueSettings
from tasker_worker.events.router import DomainEventRouter
from tasker_worker.runtime.claiming import ClaimScheduler
from tasker_worker.runtime.claims import (
    ClaimedStep,
    StepOutcome,
    claim_steps,
    extend_visibility,
    record_and_claim,
    record_results,
)
from tasker_worker.runtime.executor import StepExecutor
from tasker_worker.runtime.outcomes import bounded

log = structlog.get_logger("tasker.worker")

RECORDERS = 2
RECORD_BATCH = 64
# A finished result is never given up while the database is unreachable (giving up runs the
# step again): the recorder retries outages for as long as the process lives. Other errors
# (a deadlock victim, a serialization failure) are retried this many times.
RECORD_ATTEMPTS = 10
RECORD_BACKOFF_MAX_SECONDS = 1.0
# After the executors are done (or cut off by the shutdown deadline), finished results still
# being recorded get this long; it only matters while the database does not answer.
RECORD_GRACE_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True, slots=True)
class DispatcherStatistics:
    capacity: int
    free: int
    in_flight: int
    claimed: int
    claims: int
    failed_claims: int
    queues_waiting: int


class Dispatcher:
    """Bounded concurrency: at most `capacity` handlers running at once.

    A step holds a slot from its claim until its handler returns; its result is then
    recorded while the slot serves the next step (recording is the worker's own work, in
    batches: a handler slot does not sit idle waiting for a batch's commit). The channel of
    claimed steps holds at most `capacity` items (one per slot taken); the channel of
    finished results holds at most `capacity` and an executor waits when it is full, so at
    most about twice `capacity` steps are claimed and not yet recorded."""

    def __init__(
        self,
        *,
        db: Database,
        executor: StepExecutor,
        capacity: int,
        visibility_seconds: float,
        worker_id: str,
        max_reads: int,
        batch_size: int = 50,
        retry_pause_seconds: float = 1.0,
        max_result_bytes: int = DEFAULT_MAX_BYTES,
        events: DomainEventRouter | None = None,
    ) -> None:
        self.db = db
        self.executor = executor
        self.capacity = capacity
        self.visibility_seconds = visibility_seconds
        self.worker_id = worker_id
        self.max_reads = max_reads
        self.max_result_bytes = max_result_bytes
        self.events = events or DomainEventRouter(worker_id=worker_id,
                                                  max_bytes=max_result_bytes)
        self.claimed = 0
        self.recorded_batches = 0
        self._consumers: dict[str, QueueConsumer] = {}
        self._in_flight: dict[int, ClaimedStep] = {}
        self._intake_closed = False  # no more steps reach the executors
        self._send, self._recv = trio.open_memory_channel[ClaimedStep](capacity)
        self._done_send, self._done_recv = trio.open_memory_channel[StepOutcome](capacity)
        self.scheduler = ClaimScheduler(
            capacity=capacity, batch_size=batch_size, claim=self._claim,
            on_claimed=self._hand_over, on_outcome=self._claim_outcome,
            retry_pause_seconds=retry_pause_seconds)

    @property
    def free(self) -> int:
        return self.scheduler.free

    def statistics(self) -> DispatcherStatistics:
        s = self.scheduler
        return DispatcherStatistics(capacity=self.capacity, free=s.free,
                                    in_flight=len(self._in_flight), claimed=self.claimed,
                                    claims=s.claims, failed_claims=s.failed_claims,
                                    queues_waiting=s.waiting)

    def consumer(self, queue: str, settings: QueueSettings) -> QueueConsumer:
        """The consumer of one namespace queue: its wake-ups (notifications, timers, the
        fallback poll) put the queue in line for the claim scheduler (see `ClaimFn`)."""
        consumer = QueueConsumer(queue=queue, process=ClaimFn(self.scheduler, queue,
                                                              self._in_flight),
                                 settings=settings, handler_tasks=1, notified_ids=True)
        self._consumers[queue] = consumer
        self.scheduler.serve(queue)
        return consumer

    async def _claim(self, queue: str, limit: int) -> list[ClaimedStep]:
        return await self.db.run_autocommit(
            claim_steps, queue, None, limit, visibility_seconds=self.visibility_seconds,
            worker_id=self.worker_id, max_reads=self.max_reads)

    def _hand_over(self, steps: list[ClaimedStep]) -> int:
        """Give claimed steps to the executors; how many were given. None (0) once claiming
        has ended (the executors finish what they have and stop): a record's claim returning
        after that (a shutdown that cut claiming off) leaves its steps claimed, and they run
        again when their lease expires."""
        if self._intake_closed:
            log.warning("chained_claims_left", steps=[str(s.step_uuid) for s in steps])
            return 0
        self.claimed += len(steps)
        consumer = self._consumers.get(steps[0].queue)
        if consumer is not None:
            consumer.counters.received += len(steps)
        for step in steps:
            self._in_flight[step.msg_id] = step
            self._send.send_nowait(step)  # never full: one item per slot taken
        return len(steps)

    def _claim_outcome(self, queue: str, error: Exception | None) -> None:
        """Claims fail or succeed on the queue's consumer, as its batches would: readiness
        reports a queue whose claims keep failing."""
        consumer = self._consumers.get(queue)
        if consumer is None:
            return
        if error is None:
            consumer.consecutive_failures = 0
            return
        consumer.consecutive_failures += 1
        consumer.last_error = f"{type(error).__name__}: {error}"
        if not is_outage(error):  # outages are the database breaker's to count
            consumer.counters.failed += 1

    def stop(self) -> None:
        """Claim no more; the steps already claimed run, and every result is recorded."""
        self.scheduler.stop()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        recording = trio.CancelScope(shield=True)  # the shutdown deadline does not cut it
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._extend_loop)
            nursery.start_soon(self.executor.watch_cancellations)  # cancels lost runs
            nursery.start_soon(self.events.run)  # fast domain events to subscribers
            async with trio.open_nursery() as recorders:
                async with self._done_recv:
                    clones = [self._done_recv.clone() for _ in range(RECORDERS)]
                recorders.start_soon(self._record_all, recording, clones)
                try:
                    async with self._done_send, trio.open_nursery() as executors:
                        executors.start_soon(self._claim_until_stopped)
                        for _ in range(self.capacity):
                            executors.start_soon(self._executor_loop, self._done_send.clone())
                        task_status.started()
                finally:
                    # Executors are done (or cancelled): what they finished is in the
                    # channel, which is now closed; recorders drain it, within a bound.
                    recording.deadline = trio.current_time() + RECORD_GRACE_SECONDS
            nursery.cancel_scope.cancel()

    async def _claim_until_stopped(self) -> None:
        async with self._send:  # closed when claiming ends: executors finish what is left
            try:
                await self.scheduler.run()  # after `stop`, it waits for chained claims
            finally:  # returned, or cut off (a deadline or a cancel) without `stop`
                self.scheduler.stop()  # records claim nothing more
                self._intake_closed = True

    async def _executor_loop(self, done: trio.MemorySendChannel[StepOutcome]) -> None:
        async with done:
            async for step in self._recv:
                try:
                    outcome = await self.executor.execute(step)
                except Exception as exc:
                    log.exception("step_execution_crashed", step_uuid=str(step.step_uuid),
                                  error=str(exc))
                    self._in_flight.pop(step.msg_id, None)
                    continue
                finally:
                    self.scheduler.release(1)  # the handler is done: its slot is free
                outcome = self.events.plan(bounded(outcome, max_bytes=self.max_result_bytes))
                with trio.CancelScope(shield=True):  # finished: never dropped on the way
                    await done.send(outcome)

    async def _record_all(self, scope: trio.CancelScope,
                          channels: list[trio.MemoryReceiveChannel[StepOutcome]]) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                for channel in channels:  # parallel transactions, separate connections
                    nursery.start_soon(self._recorder, channel)

    async def _recorder(self, done: trio.MemoryReceiveChannel[StepOutcome]) -> None:
        """Record finished steps in batches: one transaction (one commit) for all that are
        ready, so a busy worker spends one round of commits on many steps. Ends when the
        channel is closed and empty, after recording everything taken from it."""
        async with done:
            async for first in done:
                batch = [first]
                while len(batch) < RECORD_BATCH:
                    try:
                        batch.append(done.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._record(batch)

    async def _record(self, batch: list[StepOutcome]) -> None:
        recorded: list[str] | None = None
        claimed: list[ClaimedStep] = []
        queue = batch[0].step.queue
        reserved = (self.scheduler.begin_chain(queue, len(batch))
                    if all(o.step.queue == queue for o in batch) else 0)
        try:
            attempt = failures = 0
            while failures < RECORD_ATTEMPTS:
                try:
                    if reserved and attempt == 0:  # the next steps are claimed by the
                        # record's transaction (a failed attempt retries the record alone)
                        recorded, claimed = await self.db.run_autocommit(
                            record_and_claim, batch, worker_id=self.worker_id, queue=queue,
                            limit=reserved, visibility_seconds=self.visibility_seconds,
                            max_reads=self.max_reads)
                    else:
                        recorded = await self.db.run_autocommit(record_results, batch,
                                                                worker_id=self.worker_id)
                    break
                except Exception as exc:
                    outage = is_outage(exc)
                    failures += not outage
                    log.warning("record_results_failed", attempt=attempt, error=str(exc),
                                outage=outage)
                    await trio.sleep(min(0.05 * 2**attempt, RECORD_BACKOFF_MAX_SECONDS))
                    attempt += 1
        finally:
            if recorded is None:  # the step's message reappears; it runs again
                log.error("results_not_recorded", steps=[str(o.step.step_uuid) for o in batch])
            self.recorded_batches += 1
            for outcome, status in zip(batch, recorded or ["failed"] * len(batch), strict=True):
                self.executor.count(outcome, status)
                self.events.after_record(outcome, status)
                consumer = self._consumers.get(outcome.step.queue)
                if status == "recorded":  # its message was deleted with the result
                    MESSAGES_CONSUMED.labels(outcome.step.queue).inc()
                if consumer is not None and recorded is not None:
                    consumer.counters.processed += 1
            for outcome in batch:  # recorded (or given up): no lease to extend
                self._in_flight.pop(outcome.step.msg_id, None)
            started = self._hand_over(claimed) if claimed else 0
            if reserved:
                self.scheduler.end_chain(queue, unused=reserved - started)

    async def _extend_loop(self) -> None:
        """Extend the leases of every step held (running, or finished and being recorded)
        every third of the visibility timeout; after a failed extension, again within a
        quarter second, so a short database outage does not let leases lapse."""
        period = max(self.visibility_seconds / 3.0, 0.2)
        pause = period
        while True:
            await trio.sleep(pause)
            pause = period
            if not self._in_flight:
                continue
            by_queue: dict[str, list[int]] = {}
            for step in list(self._in_flight.values()):
                by_queue.setdefault(step.queue, []).append(step.msg_id)
            try:
                await self.db.run_autocommit(extend_visibility, by_queue, self.visibility_seconds)
            except Exception as exc:
                log.warning("visibility_extension_failed", error=str(exc))
                pause = min(period, 0.25)


class ClaimFn:
    """The `process` coroutine of one namespace queue's consumer: puts the queue in line for
    the claim scheduler and returns at once (the scheduler claims; nothing is taken here).

    A notification only of messages this worker already holds (a record claimed them in
    its own transaction) puts nothing in line. One that arrives while a record is claiming
    from the queue in its own transaction is decided when that claim has returned: the
    messages the record enqueued are usually the ones it claimed, and their notifications
    (sent at its commit) reach the worker before its claimed steps are held, so each would
    otherwise cost a claim that finds nothing."""

    def __init__(self, scheduler: ClaimScheduler, queue: str,
                 held: dict[int, ClaimedStep] | None = None) -> None:
        self.scheduler = scheduler
        self.queue = queue
        self.held = held if held is not None else {}
        self._parked: set[int] = set()  # notified while a record claimed from the queue

    async def __call__(self, ids: list[int] | None, limit: int) -> int:
        if ids is None:
            self.scheduler.want(self.queue)
        elif self.scheduler.chaining(self.queue):
            if not self._parked:
                self.scheduler.after_chains(self.queue, self._decide_parked)
            self._parked.update(ids)
        elif not all(self._held(i) for i in ids):
            self.scheduler.want(self.queue)
        return 0

    def _decide_parked(self) -> None:
        parked, self._parked = self._parked, set()
        if not all(self._held(i) for i in parked):
            self.scheduler.want(self.queue)

    def _held(self, msg_id: int) -> bool:
        step = self.held.get(msg_id)
        return step is not None and step.queue == self.queue
