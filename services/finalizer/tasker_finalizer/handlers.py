"""Finalization: decide a task's outcome (complete, blocked by failures, error: a failed task
opens a DLQ investigation) or move it on (re-enqueue ready steps) with the task row locked,
when a retry timer fires or the readiness safety net finds work (result processing decides
the outcome of a task its last result finished, in the same transaction). A request for a
task that does not exist is set aside when its message is locked."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import structlog

from tasker_shared.contracts.payloads import FinalizationRequest
from tasker_shared.db.database import Conn
from tasker_shared.queue import pgmq
from tasker_shared.queue.processor import AfterCommit, Envelope
from tasker_shared.runtime.tracing import inject_headers, message_span
from tasker_shared.store.outcomes import report_outcome
from tasker_shared.store.tasks import evaluate_task_deferred

log = structlog.get_logger("tasker.finalizer")


class FinalizerHandlers:
    """`handle_finalizations` for the transactional consumer and the readiness sweep."""

    def __init__(self, *, processor_uuid: UUID) -> None:
        self.processor_uuid = processor_uuid
        self.finalized = 0
        self.swept = 0

    def handle_finalizations(
        self, conn: Conn, batch: list[Envelope[FinalizationRequest]]
    ) -> AfterCommit:
        """Send one evaluation per task of the batch; their outcomes are read after the
        commit (in pipeline mode they travel together with the COMMIT)."""
        pending: list[Callable[[], dict[str, object]]] = []
        seen: set[UUID] = set()
        for envelope in batch:
            task_uuid = envelope.payload.task_uuid
            if task_uuid in seen:
                continue
            seen.add(task_uuid)
            pending.append(self._finalize(conn, task_uuid, reason=envelope.payload.reason,
                                          headers=envelope.headers))

        def after_commit() -> None:
            for outcome in pending:
                outcome()

        return after_commit

    def finalize(self, conn: Conn, task_uuid: UUID, *, reason: str | None,
                 headers: dict[str, object] | None = None) -> dict[str, object]:
        return self._finalize(conn, task_uuid, reason=reason, headers=headers)()

    def _finalize(self, conn: Conn, task_uuid: UUID, *, reason: str | None,
                  headers: dict[str, object] | None) -> Callable[[], dict[str, object]]:
        with message_span("finalizer.finalize", headers,
                          attributes={"tasker.task_uuid": str(task_uuid),
                                      "tasker.reason": reason or ""}):
            evaluation = evaluate_task_deferred(
                conn, task_uuid, processor=self.processor_uuid, finalize=True,
                headers=inject_headers(headers) or None)

        def outcome() -> dict[str, object]:
            result = evaluation()
            if result is None:  # deleted since its message was locked (or a sweep's race)
                log.warning("finalize_unknown_task", action="skip", task_uuid=str(task_uuid))
                return {"action": "unknown_task"}
            if report_outcome(result, task_uuid=task_uuid, reason=reason):
                self.finalized += 1
            return result

        return outcome

    def sweep_ready_tasks(self, conn: Conn, limit: int) -> int:
        """Safety net: evaluate tasks discovery says have work (lost wake-ups, operator fixes)."""
        rows = conn.execute("SELECT task_uuid FROM tasker.get_next_ready_tasks_v1(%s)",
                            (limit,)).fetchall()
        for row in rows:
            self.finalize(conn, row["task_uuid"], reason="readiness_sweep")
        self.swept += len(rows)
        return len(rows)


def lock_finalization_messages(
    conn: Conn, queue: str, ids: list[int] | None, limit: int
) -> list[pgmq.RawMessage]:
    """The finalizer's lock: the messages with the task each names; one naming a task that
    does not exist is set aside (after decoding: a malformed one is set aside as such)."""
    return pgmq.unknown_set_aside(
        pgmq.lock_messages_with(conn, "tasker.lock_finalization_messages_v1", queue, ids,
                                limit),
        key="task_uuid", what="task")
