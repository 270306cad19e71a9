"""Ingestion: a task request becomes a task with its first steps enqueued, in one transaction,
and the outcome (created / duplicate / invalid) is announced on `tasker_task_request_outcomes`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import structlog

from tasker_shared.contracts.payloads import TaskRequestMessage
from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError, ValidationError
from tasker_shared.queue import pgmq
from tasker_shared.queue.processor import AfterCommit, Envelope
from tasker_shared.runtime.tracing import inject_headers, message_span
from tasker_shared.store.tasks import DUPLICATE_REASON, create_and_start_task, task_identity
from tasker_shared.store.templates import TemplateCache

log = structlog.get_logger("tasker.ingestion")


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    request_id: str
    outcome: str
    task_uuid: UUID | None = None
    reason: str | None = None
    error_code: str | None = None


class IngestionHandlers:
    """`handle_task_requests` for the transactional consumer."""

    def __init__(self, *, processor_uuid: UUID, environment: str) -> None:
        self.processor_uuid = processor_uuid
        self.environment = environment
        self.templates = TemplateCache()
        self.created = 0
        self.duplicates = 0
        self.invalid = 0

    def handle_task_requests(
        self, conn: Conn, batch: list[Envelope[TaskRequestMessage]]
    ) -> AfterCommit:
        """Each request becomes a task (or an invalid/duplicate outcome) whose outcome is
        stored and announced in the same transaction; counted and logged after the commit."""
        pending: list[tuple[int, Callable[[], Outcome]]] = []
        for envelope in batch:
            with message_span("ingestion.task_request", envelope.headers,
                              attributes={"tasker.request_id": envelope.payload.request_id,
                                          "tasker.msg_id": envelope.msg_id}):
                pending.append((envelope.msg_id, self._ingest(conn, envelope)))

        def after_commit() -> None:
            for msg_id, read in pending:
                outcome = read()
                if outcome.outcome == "created":
                    self.created += 1
                elif outcome.outcome == "duplicate":
                    self.duplicates += 1
                else:
                    self.invalid += 1
                log.info("task_request", action="ingest", request_id=outcome.request_id,
                         outcome=outcome.outcome, task_uuid=str(outcome.task_uuid or ""),
                         reason=outcome.reason, msg_id=msg_id)

        return after_commit

    def _ingest(
        self, conn: Conn, envelope: Envelope[TaskRequestMessage]
    ) -> Callable[[], Outcome]:
        request = envelope.payload.task_request
        rid = envelope.payload.request_id
        headers = envelope.headers
        stamp = envelope.row or {}
        try:
            if stamp.get("named_task_uuid") is not None:  # read with the message
                entry = self.templates.entry(conn, stamp["named_task_uuid"],
                                             stamp["template_updated_at"])
            else:
                entry = self.templates.by_key(conn, request.namespace, request.name,
                                              request.version)
            template = entry.template.resolve_for_environment(self.environment)
            template.validate_context(request.context)
            identity = task_identity(template, entry.named_task_uuid, request)
        except NotFoundError as exc:
            return _invalid(conn, Outcome(request_id=rid, outcome="invalid", reason=str(exc),
                                          error_code="not_found"))
        except ValidationError as exc:
            return _invalid(conn, Outcome(request_id=rid, outcome="invalid", reason=str(exc),
                                          error_code="validation_error"))
        created = create_and_start_task(
            conn, named_task_uuid=entry.named_task_uuid, template=template, request=request,
            identity=identity, processor=self.processor_uuid,
            headers=inject_headers(headers) or None, request_id=rid)

        def outcome() -> Outcome:
            task_uuid = created()
            if task_uuid is None:
                return Outcome(request_id=rid, outcome="duplicate", reason=DUPLICATE_REASON,
                               error_code="conflict")
            return Outcome(request_id=rid, outcome="created", task_uuid=task_uuid)

        return outcome


def lock_request_messages(
    conn: Conn, queue: str, ids: list[int] | None, limit: int
) -> list[pgmq.RawMessage]:
    """Ingestion's lock: the request messages with the stamp of the template each names."""
    return pgmq.lock_messages_with(conn, "tasker.lock_task_request_messages_v1", queue, ids,
                                   limit)


def _invalid(conn: Conn, outcome: Outcome) -> Callable[[], Outcome]:
    """Store and announce an invalid request's outcome (sent now, not awaited)."""
    conn.execute("SELECT tasker.announce_request_outcome_v1(%s, %s, NULL, %s, %s)",
                 (outcome.request_id, outcome.outcome, outcome.reason, outcome.error_code))
    return lambda: outcome
