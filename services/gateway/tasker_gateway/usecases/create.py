"""CreateTask: validate cheaply, queue the request for ingestion, wait (bounded) for the outcome.

The waiter is registered before the request is sent, so the outcome NOTIFY cannot be missed
while the listener is connected. On timeout, or without a listener (polling deployment), the
`task_request_outcomes` table answers; if it has nothing yet the request is reported as
accepted (202) with its request id.

Durability: nothing answered as accepted may be lost to a database crash. A send that is not
waited for commits synchronously; a send that is waited for commits without waiting for the
WAL flush, and is made durable before the answer either by ingestion's own synchronous commit
(201: WAL is flushed in order) or by `flush_wal` (202).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import trio
from psycopg.types.json import Jsonb

from tasker_gateway.context import GatewayContext
from tasker_gateway.errors import UnprocessableRequest
from tasker_gateway.models.tasks import TaskRequestBody, TaskView
from tasker_gateway.outcomes import IngestionOutcome, Waiter, read_outcomes
from tasker_gateway.usecases.inputs import check_json_input, parse_request_id
from tasker_gateway.usecases.views import task_view
from tasker_shared.contracts.messages import encode_task_request_message
from tasker_shared.contracts.payloads import TaskRequest, TaskRequestMessage, TaskRequestMetadata
from tasker_shared.contracts.queues import ORCHESTRATION_TASK_REQUESTS
from tasker_shared.db.database import Conn
from tasker_shared.errors import ConflictError, NotFoundError, TaskerError
from tasker_shared.runtime.tracing import inject_headers
from tasker_shared.store.tasks import task_identity
from tasker_shared.store.templates import TemplateCache

MAX_WAIT_SECONDS = 60.0


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateOutcome:
    request_id: str
    task: TaskView | None  # None: accepted and still queued


def _utc(value: datetime) -> datetime:
    """A date-time without an offset is UTC (tasker-core's clients send naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def to_task_request(body: TaskRequestBody) -> TaskRequest:
    """The queue payload for a validated body (SPEC defaults already applied)."""
    return TaskRequest(
        name=body.name, namespace=body.namespace, version=body.version,
        context=dict(body.context), initiator=body.initiator,
        source_system=body.source_system, reason=body.reason, tags=tuple(body.tags),
        requested_at=_utc(body.requested_at) if body.requested_at else datetime.now(UTC),
        options=dict(body.options) if body.options is not None else None,
        priority=body.priority, correlation_id=body.correlation_id or uuid4(),
        parent_correlation_id=body.parent_correlation_id,
        idempotency_key=body.idempotency_key)


_SEND = ("SELECT set_config('synchronous_commit', %s, true),"
         " tasker.send_v1(%s::text, %s::jsonb, %s::jsonb)")


def trace_headers() -> Jsonb | None:
    """PGMQ headers carrying the current (API call's) span as `traceparent`, so ingestion's
    span continues the caller's trace; None when tracing is off."""
    headers = inject_headers(None)
    return Jsonb(headers) if headers else None


def _send(conn: Conn, payload: dict[str, object], headers: Jsonb | None, *,
          durable: bool) -> None:
    """Queue the request: one statement, its own transaction (run in autocommit). `durable`
    commits synchronously whatever the pool's setting; otherwise the commit does not wait for
    the WAL flush, and the caller must make it durable before it answers "accepted"."""
    conn.execute(_SEND, ("on" if durable else "off", ORCHESTRATION_TASK_REQUESTS,
                         Jsonb(payload), headers))


def flush_wal(conn: Conn) -> None:
    """Flush all WAL written so far (the request sent without waiting for it included).

    A commit waits for the flush only when its transaction wrote WAL and has a transaction
    id: `SELECT pg_current_xact_id()` alone writes none, so PostgreSQL commits it
    asynchronously and flushes nothing. A transactional logical message writes one WAL
    record (allowed to any role, at any wal_level); its synchronous commit flushes the WAL
    up to itself, so every earlier commit too."""
    conn.execute("SELECT set_config('synchronous_commit', 'on', true),"
                 " pg_logical_emit_message(true, 'tasker.flush', '')")


def template_exists(conn: Conn, request: TaskRequest) -> bool:
    row = conn.execute(
        "SELECT 1 FROM tasker.named_tasks nt JOIN tasker.task_namespaces tn"
        " ON tn.task_namespace_uuid = nt.task_namespace_uuid"
        " WHERE tn.name = %s AND nt.name = %s AND nt.version = %s",
        (request.namespace, request.name, request.version)).fetchone()
    return row is not None


async def create_task(
    ctx: GatewayContext,
    body: TaskRequestBody,
    *,
    requester: str,
    wait: bool = True,
    wait_timeout: float | None = None,
    request_id: str | None = None,
) -> CreateOutcome:
    rid = parse_request_id(request_id) if request_id else str(uuid4())
    check_json_input(ctx.settings.gateway, body.context, "context")
    check_json_input(ctx.settings.gateway, body.options, "options")
    ctx.backpressure.check()
    request = to_task_request(body)
    message = TaskRequestMessage(task_request=request, request_id=rid,
                                 metadata=TaskRequestMetadata(requester=requester[:128]))
    payload = encode_task_request_message(message)
    if not wait:
        await ctx.db.run_autocommit(_send, payload, trace_headers(), durable=True)
        return CreateOutcome(request_id=rid, task=None)
    timeout = min(wait_timeout or ctx.settings.gateway.create_wait_timeout_seconds,
                  MAX_WAIT_SECONDS)
    with ctx.outcomes.expect(rid) as waiter:
        await ctx.db.run_autocommit(_send, payload, trace_headers(), durable=False)
        outcome = (await gather_outcomes(ctx, {rid: waiter},
                                         trio.current_time() + timeout)).get(rid)
    # Ingestion's commit is durable only when the services commit synchronously.
    if outcome is None or not ctx.settings.database.synchronous_commit:
        await ctx.db.run_autocommit(flush_wal)  # "accepted" must survive a database crash
    if outcome is None:
        return CreateOutcome(request_id=rid, task=None)
    return CreateOutcome(request_id=rid, task=await _resolve(ctx, outcome, request))


async def gather_outcomes(ctx: GatewayContext, waiters: dict[str, Waiter], deadline: float
                          ) -> dict[str, IngestionOutcome]:
    """The outcomes of `waiters` known by `deadline`: heard through this gateway's listener
    or read from `task_request_outcomes` (see OutcomeWaiter.gather)."""
    return await ctx.outcomes.gather(waiters, deadline,
                                      listening=lambda: ctx.runtime.listening,
                                      read=lambda rids: ctx.db.run(read_outcomes, rids))


def existing_task(conn: Conn, cache: TemplateCache, request: TaskRequest, environment: str
                  ) -> UUID | None:
    """The task that already has the request's identity (None when none can be found: the
    template changed since, or the strategy gives every request a new identity)."""
    try:
        entry = cache.by_key(conn, request.namespace, request.name, request.version)
        template = entry.template.resolve_for_environment(environment)
        identity = task_identity(template, entry.named_task_uuid, request)
    except TaskerError:
        return None
    row = conn.execute("SELECT task_uuid FROM tasker.tasks WHERE identity_hash = %s",
                       (identity,)).fetchone()
    return row["task_uuid"] if row is not None else None


async def duplicate_error(ctx: GatewayContext, request: TaskRequest, reason: str
                          ) -> ConflictError:
    """409 / ALREADY_EXISTS naming the existing task (`details.existing_task_uuid`)."""
    found = await ctx.db.run(existing_task, ctx.templates, request, ctx.settings.environment)
    if found is None:
        return ConflictError(reason)
    return ConflictError(f"{reason}: existing task {found}",
                         details={"existing_task_uuid": str(found)})


async def _resolve(ctx: GatewayContext, outcome: IngestionOutcome, request: TaskRequest
                   ) -> TaskView:
    if outcome.outcome == "created" and outcome.task_uuid is not None:
        return await ctx.db.run_autocommit(task_view, outcome.task_uuid)  # a read
    reason = outcome.reason or "the task request was refused"
    if outcome.outcome == "duplicate":
        raise await duplicate_error(ctx, request, reason)
    code = outcome.error_code
    if code is None:  # read from the table, which does not record the code
        exists = await ctx.db.run(template_exists, request)
        code = "validation_error" if exists else "not_found"
    if code == "not_found":
        raise NotFoundError(reason)
    raise UnprocessableRequest(reason)
