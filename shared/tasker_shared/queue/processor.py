"""Transactional processing for orchestration queues: lock, decode, handle, delete — in one
transaction. A batch that fails is retried message by message; a message that keeps failing
is counted and finally set aside with its reason. One that cannot be decoded (body or
headers undecodable or nested too deep: `queue.poison`, the decoder's ContractError) or that
its lock found nothing to act on for (`RawMessage.set_aside_reason`) is set aside at once,
before any handler sees it, so the batch and the queue go on.

The transaction runs in psycopg's pipeline mode: a statement whose result is not read yet
travels with the next one, so BEGIN goes with the lock and a handler's last call with the
delete and the COMMIT. A handler reads such results in the function it returns, which runs
once the batch is committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from tasker_shared.db.database import Conn, Database
from tasker_shared.errors import ContractError
from tasker_shared.queue import pgmq, poison
from tasker_shared.queue.consumer import ConsumerCounters
from tasker_shared.runtime.metrics import (
    HANDLER_DURATION,
    MESSAGES_CONSUMED,
    MESSAGES_FAILED,
    MESSAGES_SET_ASIDE,
)

M = TypeVar("M")
log = structlog.get_logger("tasker.processor")

# The `reason` label of MESSAGES_SET_ASIDE for a message its lock found nothing to act on for
# (`RawMessage.set_aside_reason`: a result for an unknown step, a finalization for an
# unknown task).
UNKNOWN_TARGET = "unknown_target"


@dataclass(frozen=True, kw_only=True, slots=True)
class Envelope(Generic[M]):
    msg_id: int
    read_ct: int
    payload: M
    headers: dict[str, Any] | None
    row: dict[str, Any] | None = None  # see `pgmq.RawMessage.row`


# A handler may return a function to run once the batch is committed (reading results of
# statements it left in the pipeline, metrics and logs of what was committed).
AfterCommit = Callable[[], None]
Handle = Callable[[Conn, list[Envelope[M]]], AfterCommit | None]
Lock = Callable[[Conn, str, list[int] | None, int], list[pgmq.RawMessage]]


class TransactionalProcessor(Generic[M]):
    """`process(ids, limit)` for a `QueueConsumer`; see the module docstring."""

    def __init__(
        self,
        *,
        db: Database,
        queue: str,
        decode: Callable[[Any], M],
        handle: Handle[M],
        counters: ConsumerCounters,
        max_reads: int,
        retry_delay_seconds: float = 1.0,
        lock: Lock = pgmq.lock_messages,
    ) -> None:
        self.db = db
        self.queue = queue
        self.decode = decode
        self.handle = handle
        self.lock = lock
        self.counters = counters
        self.max_reads = max_reads
        self.retry_delay_seconds = retry_delay_seconds

    async def __call__(self, ids: list[int] | None, limit: int) -> int:
        locked: list[int] = []
        started = time.perf_counter()
        try:
            taken = await self.db.run(self._batch, ids, limit, locked)
        except Exception as exc:
            if not locked:
                raise
            log.warning("batch_failed", queue=self.queue, size=len(locked), error=str(exc))
            if len(locked) == 1:
                await self._failed(locked[0], exc)
                return 1
            for msg_id in locked:
                try:
                    await self.db.run(self._batch, [msg_id], 1, [])
                except Exception as one_exc:
                    await self._failed(msg_id, one_exc)
            return len(locked)
        finally:
            if locked:  # an empty batch handled nothing: not a handler duration
                HANDLER_DURATION.labels(self.queue).observe(time.perf_counter() - started)
        return taken

    def _batch(self, conn: Conn, ids: list[int] | None, limit: int, locked: list[int]) -> int:
        # Pipeline mode: statements whose results are not awaited travel together — BEGIN
        # goes with the lock, the delete with the COMMIT.
        with conn.pipeline():
            taken, after_commit = self._batch_steps(conn, ids, limit, locked)
            conn.commit()
        if after_commit is not None:
            try:
                after_commit()
            except Exception as exc:  # the batch is committed: report, never redo it
                log.exception("after_commit_failed", queue=self.queue, error=str(exc))
        return taken

    def _batch_steps(
        self, conn: Conn, ids: list[int] | None, limit: int, locked: list[int]
    ) -> tuple[int, AfterCommit | None]:
        raw = self.lock(conn, self.queue, ids, limit)
        locked.extend(m.msg_id for m in raw)
        envelopes: list[Envelope[M]] = []
        for message in raw:
            envelope = self._envelope(conn, message)
            if envelope is not None:
                envelopes.append(envelope)
        after_commit = None
        if envelopes:
            after_commit = self.handle(conn, envelopes)
            pgmq.delete_messages(conn, self.queue, [e.msg_id for e in envelopes])
        self.counters.received += len(raw)
        self.counters.processed += len(envelopes)
        MESSAGES_CONSUMED.labels(self.queue).inc(len(envelopes))
        return len(raw), after_commit

    def _envelope(self, conn: Conn, message: pgmq.RawMessage) -> Envelope[M] | None:
        """The message decoded for the handler, or None when it was set aside instead."""
        problem = poison.message_problem(message.message, message.headers)
        if problem is not None:
            self._set_aside(conn, message.msg_id, problem, poison.UNDECODABLE)
            return None
        try:
            payload = self.decode(message.message)
        except ContractError as exc:
            self._set_aside(conn, message.msg_id, f"undecodable: {exc}", poison.UNDECODABLE)
            return None
        if message.set_aside_reason is not None:
            self._set_aside(conn, message.msg_id, message.set_aside_reason, UNKNOWN_TARGET)
            return None
        return Envelope(msg_id=message.msg_id, read_ct=message.read_ct, payload=payload,
                        headers=message.headers, row=message.row)

    def _set_aside(self, conn: Conn, msg_id: int, reason: str, label: str) -> None:
        """Archive the message with its reason in this batch's transaction; counted."""
        pgmq.set_aside(conn, self.queue, msg_id, reason[:2000])
        self.counters.set_aside += 1
        MESSAGES_SET_ASIDE.labels(self.queue, label).inc()
        log.warning("message_set_aside", queue=self.queue, msg_id=msg_id, reason=reason[:500])

    async def _failed(self, msg_id: int, exc: BaseException) -> None:
        self.counters.failed += 1
        MESSAGES_FAILED.labels(self.queue).inc()
        reason = f"{type(exc).__name__}: {exc}"
        outcome = await self.db.run(
            pgmq.message_failed, self.queue, msg_id, reason,
            max_reads=self.max_reads, retry_delay=self.retry_delay_seconds,
        )
        if outcome == "set_aside":
            self.counters.set_aside += 1
            MESSAGES_SET_ASIDE.labels(self.queue, "max_reads").inc()
        log.warning("message_failed", queue=self.queue, msg_id=msg_id, outcome=outcome,
                    error=reason)
