"""Ingestion: a task request becomes a task with its first steps enqueued, in one transaction,
and the outcome (created / duplicate / invalid) is announced on `tasker_task_request_outcomes`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

import structlog

from tasker_shared.contracts.payloads import TaskRequestMessage
from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError, ValidationError
from tasker_shared.queue.processor import Envelope
from tasker_shared.runtime.tracing import inject_headers, message_span
from tasker_shared.store.tasks import create_and_start_task, task_identity
from tasker_shared.store.templates import TemplateCache

log = structlog.get_logger("tasker.ingestion")

OUTCOME_CHANNEL = "tasker_task_request_outcomes"


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

    def handle_task_requests(self, conn: Conn, batch: list[Envelope[TaskRequestMessage]]) -> None:
        for envelope in batch:
            with message_span("ingestion.task_request", envelope.headers,
                              attributes={"tasker.request_id": envelope.payload.request_id,
                                          "tasker.msg_id": envelope.msg_id}) as current:
                outcome = self._ingest(conn, envelope.payload, envelope.headers)
                current.set_attribute("tasker.outcome", outcome.outcome)
                current.set_attribute("tasker.task_uuid", str(outcome.task_uuid or ""))
            _announce(conn, outcome)
            log.info("task_request", action="ingest", request_id=outcome.request_id,
                     outcome=outcome.outcome, task_uuid=str(outcome.task_uuid or ""),
                     reason=outcome.reason, msg_id=envelope.msg_id)

    def _ingest(
        self, conn: Conn, message: TaskRequestMessage, headers: dict[str, object] | None
    ) -> Outcome:
        request = message.task_request
        rid = message.request_id
        try:
            entry = self.templates.by_key(conn, request.namespace, request.name, request.version)
            template = entry.template.resolve_for_environment(self.environment)
            template.validate_context(request.context)
            identity = task_identity(template, entry.named_task_uuid, request)
        except NotFoundError as exc:
            self.invalid += 1
            return Outcome(request_id=rid, outcome="invalid", reason=str(exc),
                           error_code="not_found")
        except ValidationError as exc:
            self.invalid += 1
            return Outcome(request_id=rid, outcome="invalid", reason=str(exc),
                           error_code="validation_error")
        task_uuid = create_and_start_task(
            conn, named_task_uuid=entry.named_task_uuid, template=template, request=request,
            identity=identity, processor=self.processor_uuid,
            headers=inject_headers(headers) or None)
        if task_uuid is None:
            self.duplicates += 1
            return Outcome(request_id=rid, outcome="duplicate",
                           reason="a task with the same identity already exists",
                           error_code="conflict")
        self.created += 1
        return Outcome(request_id=rid, outcome="created", task_uuid=task_uuid)


def _announce(conn: Conn, outcome: Outcome) -> None:
    """Store the outcome and notify whoever waits on the request, in one statement whose
    result is not awaited (in pipeline mode it travels with the COMMIT)."""
    payload = json.dumps({
        "request_id": outcome.request_id,
        "outcome": outcome.outcome,
        "task_uuid": str(outcome.task_uuid) if outcome.task_uuid else None,
        "reason": (outcome.reason or "")[:3000] or None,
        "error_code": outcome.error_code,
    })
    conn.execute(
        "WITH stored AS (INSERT INTO tasker.task_request_outcomes (request_id, outcome,"
        " task_uuid, reason) VALUES (%s, %s, %s, %s) ON CONFLICT (request_id) DO NOTHING)"
        " SELECT pg_notify(%s, %s)",
        (outcome.request_id, outcome.outcome, outcome.task_uuid, outcome.reason,
         OUTCOME_CHANNEL, payload),
    )
