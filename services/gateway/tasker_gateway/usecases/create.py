"""CreateTask: validate cheaply, queue the request for ingestion, wait (bounded) for the outcome.

The waiter is registered before the request is sent, so the outcome NOTIFY cannot be missed
while the listener is connected. On timeout, or without a listener (polling deployment), the
`task_request_outcomes` table answers; if it has nothing yet the request is reported as
accepted (202) with its request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import trio
from psycopg.types.json import Jsonb

from tasker_gateway.context import GatewayContext
from tasker_gateway.errors import UnprocessableRequest
from tasker_gateway.models.tasks import TaskRequestBody, TaskView
from tasker_gateway.outcomes import IngestionOutcome, Waiter, read_outcome
from tasker_gateway.usecases.inputs import parse_request_id
from tasker_gateway.usecases.views import task_view
from tasker_shared.contracts.messages import encode_task_request_message
from tasker_shared.contracts.payloads import TaskRequest, TaskRequestMessage, TaskRequestMetadata
from tasker_shared.contracts.queues import ORCHESTRATION_TASK_REQUESTS
from tasker_shared.db.database import Conn
from tasker_shared.errors import ConflictError, NotFoundError
from tasker_shared.queue import pgmq

MAX_WAIT_SECONDS = 60.0
_POLL_FIRST, _POLL_MAX = 0.01, 0.25


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateOutcome:
    request_id: str
    task: TaskView | None  # None: accepted and still queued


def to_task_request(body: TaskRequestBody) -> TaskRequest:
    """The queue payload for a validated body (SPEC defaults already applied)."""
    return TaskRequest(
        name=body.name, namespace=body.namespace, version=body.version,
        context=dict(body.context), initiator=body.initiator,
        source_system=body.source_system, reason=body.reason, tags=tuple(body.tags),
        requested_at=body.requested_at or datetime.now(UTC),
        options=dict(body.options) if body.options is not None else None,
        priority=body.priority, correlation_id=body.correlation_id or uuid4(),
        parent_correlation_id=body.parent_correlation_id,
        idempotency_key=body.idempotency_key)


def _send(conn: Conn, payload: dict[str, object], *, flush: bool = True) -> None:
    """Queue the request: one statement, its own transaction (run in autocommit). Without
    `flush` the commit does not wait for the WAL flush: used
    when the caller waits for ingestion, whose own flushed commit makes this one durable too
    (WAL is flushed in order); a 202 is only answered after `_flush`."""
    if flush:
        pgmq.send(conn, ORCHESTRATION_TASK_REQUESTS, payload)
    else:
        conn.execute("SELECT set_config('synchronous_commit', 'off', true),"
                     " tasker.send_v1(%s::text, %s::jsonb)",
                     (ORCHESTRATION_TASK_REQUESTS, Jsonb(payload)))


def _flush(conn: Conn) -> None:
    """A transaction with an id: its synchronous commit flushes all WAL written before."""
    conn.execute("SELECT pg_current_xact_id()")


def _template_exists(conn: Conn, request: TaskRequest) -> bool:
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
    ctx.backpressure.check()
    rid = parse_request_id(request_id) if request_id else str(uuid4())
    request = to_task_request(body)
    message = TaskRequestMessage(task_request=request, request_id=rid,
                                 metadata=TaskRequestMetadata(requester=requester[:128]))
    payload = encode_task_request_message(message)
    if not wait:
        await ctx.db.run_autocommit(_send, payload)
        return CreateOutcome(request_id=rid, task=None)
    timeout = min(wait_timeout or ctx.settings.gateway.create_wait_timeout_seconds,
                  MAX_WAIT_SECONDS)
    with ctx.outcomes.expect(rid) as waiter:
        await ctx.db.run_autocommit(_send, payload, flush=False)
        outcome = await _await_outcome(ctx, waiter, rid, trio.current_time() + timeout)
    if outcome is None:
        await ctx.db.run_autocommit(_flush)  # "accepted" must survive a database crash
        return CreateOutcome(request_id=rid, task=None)
    return CreateOutcome(request_id=rid, task=await _resolve(ctx, outcome, request))


async def _await_outcome(ctx: GatewayContext, waiter: Waiter, rid: str, deadline: float
                         ) -> IngestionOutcome | None:
    if ctx.runtime.listening:
        with trio.move_on_at(deadline):
            await waiter.event.wait()
        if waiter.outcome is not None:
            return waiter.outcome
        return await ctx.db.run(read_outcome, rid)
    pause = _POLL_FIRST
    while True:
        found = waiter.outcome or await ctx.db.run(read_outcome, rid)
        remaining = deadline - trio.current_time()
        if found is not None or remaining <= 0:
            return found
        await trio.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)


async def _resolve(ctx: GatewayContext, outcome: IngestionOutcome, request: TaskRequest
                   ) -> TaskView:
    if outcome.outcome == "created" and outcome.task_uuid is not None:
        return await ctx.db.run_autocommit(task_view, outcome.task_uuid)  # a read
    reason = outcome.reason or "the task request was refused"
    if outcome.outcome == "duplicate":
        raise ConflictError(reason)
    code = outcome.error_code
    if code is None:  # read from the table, which does not record the code
        exists = await ctx.db.run(_template_exists, request)
        code = "validation_error" if exists else "not_found"
    if code == "not_found":
        raise NotFoundError(reason)
    raise UnprocessableRequest(reason)
