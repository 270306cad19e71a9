"""Claims steps as capacity allows and hands them to a fixed set of executor tasks; keeps
the claimed messages invisible (visibility timeout extended) while their handlers run."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
import trio

from tasker_shared.db.database import Database
from tasker_shared.queue.consumer import QueueConsumer
from tasker_worker.runtime.claims import (
    ClaimedStep,
    StepOutcome,
    claim_steps,
    extend_visibility,
    record_results,
)
from tasker_worker.runtime.executor import StepExecutor

log = structlog.get_logger("tasker.worker")

RECORDERS = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class DispatcherStatistics:
    capacity: int
    free: int
    in_flight: int
    claimed: int
    starved_claims: int


class Dispatcher:
    """Bounded concurrency: at most `capacity` steps claimed and running at once."""

    def __init__(
        self,
        *,
        db: Database,
        executor: StepExecutor,
        capacity: int,
        visibility_seconds: float,
        worker_id: str,
        max_reads: int,
    ) -> None:
        self.db = db
        self.executor = executor
        self.capacity = capacity
        self.visibility_seconds = visibility_seconds
        self.worker_id = worker_id
        self.max_reads = max_reads
        self.free = capacity
        self.claimed = 0
        self.starved_claims = 0
        self._starved: set[QueueConsumer] = set()
        self._in_flight: dict[int, ClaimedStep] = {}
        self._send, self._recv = trio.open_memory_channel[ClaimedStep](capacity)
        self._done_send, self._done_recv = trio.open_memory_channel[StepOutcome](capacity)
        self.recorded_batches = 0
        self._stopping = False
        self._idle: set[trio.CancelScope] = set()

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(capacity=self.capacity, free=self.free,
                                    in_flight=len(self._in_flight), claimed=self.claimed,
                                    starved_claims=self.starved_claims)

    async def claim(self, consumer: QueueConsumer | None, queue: str, ids: list[int] | None,
                    limit: int) -> int:
        if self._stopping:
            return 0
        n = min(limit, self.free)
        if n <= 0:
            self.starved_claims += 1
            if consumer is not None:
                self._starved.add(consumer)
            return 0
        self.free -= n
        try:
            steps = await self.db.run_autocommit(claim_steps, queue, ids, n,
                                      visibility_seconds=self.visibility_seconds,
                                      worker_id=self.worker_id, max_reads=self.max_reads)
        except BaseException:
            self.free += n
            raise
        self.free += n - len(steps)
        self.claimed += len(steps)
        for step in steps:
            self._in_flight[step.msg_id] = step
            self._send.send_nowait(step)
        return len(steps) if len(steps) < n else limit

    def stop(self) -> None:
        self._stopping = True
        for scope in list(self._idle):
            scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._extend_loop)
            async with trio.open_nursery() as recording:
                async with self._done_recv:
                    for _ in range(RECORDERS):  # parallel transactions, separate connections
                        recording.start_soon(self._recorder, self._done_recv.clone())
                async with self._done_send, trio.open_nursery() as executors:
                    for _ in range(self.capacity):
                        executors.start_soon(self._executor_loop, self._done_send.clone())
                    task_status.started()
            nursery.cancel_scope.cancel()

    async def _executor_loop(self, done: trio.MemorySendChannel[StepOutcome]) -> None:
        async with done:
            while True:
                if self._stopping:
                    try:
                        step = self._recv.receive_nowait()
                    except trio.WouldBlock:
                        return
                else:
                    with trio.CancelScope() as idle:
                        self._idle.add(idle)
                        step = await self._recv.receive()
                    self._idle.discard(idle)
                    if idle.cancelled_caught:
                        continue
                try:
                    outcome = await self.executor.execute(step)
                except Exception as exc:
                    log.exception("step_execution_crashed", step_uuid=str(step.step_uuid),
                                  error=str(exc))
                    self._release([step])
                    continue
                await done.send(outcome)

    async def _recorder(self, done: trio.MemoryReceiveChannel[StepOutcome]) -> None:
        """Record finished steps in batches: one transaction (one commit) for all that are
        ready, so a busy worker spends one round of commits on many steps."""
        async with done:
            async for first in done:
                batch = [first]
                while len(batch) < 64:
                    try:
                        batch.append(done.receive_nowait())
                    except trio.WouldBlock:
                        break
                for attempt in range(5):
                    try:
                        recorded = await self.db.run_autocommit(record_results, batch,
                                                     worker_id=self.worker_id)
                        break
                    except Exception as exc:
                        log.warning("record_results_failed", attempt=attempt, error=str(exc))
                        await trio.sleep(0.1 * 2**attempt)
                else:
                    recorded = ["failed"] * len(batch)
                self.recorded_batches += 1
                for outcome, status in zip(batch, recorded, strict=True):
                    self.executor.count(outcome, status)
                self._release([o.step for o in batch])

    def _release(self, steps: list[ClaimedStep]) -> None:
        for step in steps:
            self._in_flight.pop(step.msg_id, None)
        self.free += len(steps)
        for consumer in list(self._starved):
            consumer.waker.request_poll()
        self._starved.clear()

    async def _extend_loop(self) -> None:
        period = max(self.visibility_seconds / 3.0, 0.2)
        while True:
            await trio.sleep(period)
            if not self._in_flight:
                continue
            by_queue: dict[str, list[int]] = {}
            for step in list(self._in_flight.values()):
                by_queue.setdefault(step.queue, []).append(step.msg_id)
            try:
                await self.db.run_autocommit(extend_visibility, by_queue, self.visibility_seconds)
            except Exception as exc:
                log.warning("visibility_extension_failed", error=str(exc))


class ClaimFn:
    """The `process` coroutine of one namespace queue's consumer."""

    def __init__(self, dispatcher: Dispatcher, queue: str) -> None:
        self.dispatcher = dispatcher
        self.queue = queue
        self.consumer: QueueConsumer | None = None

    async def __call__(self, ids: list[int] | None, limit: int) -> int:
        return await self.dispatcher.claim(self.consumer, self.queue, ids, limit)
